package esdnative.cli.weights;

import esdnative.checkpoint.ModelWeights;
import esdnative.util.UserError;
import esdnative.lora.KohyaNames;
import esdnative.lora.LoraExtraction;
import esdnative.lora.LoraSettings;
import esdnative.lora.LoraWriter;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.options.Flags;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SequencedCollection;

/**
 * {@code esd-native weights extract-lora BASE ERASED OUT}: the UNet difference between two models (any layouts; SD 1.x/2.x or
 * SDXL) as a kohya-convention LoRA file ({@link LoraExtraction}, {@link LoraWriter}), with each module's residual in the log
 * and the metadata. Changed tensors a LoRA cannot hold (biases, norms, k×k convolutions, other components) are listed.
 */
@Command(name = "extract-lora",
        description = "Write the UNet change between two models (e.g. an original and its ESD or UCE result) as a LoRA file "
                + "(kohya keys, as AUTOMATIC1111, ComfyUI and diffusers read them), with each module's approximation residual.")
public final class ExtractLoraCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "BASE", description = "The original model (diffusers folder, .safetensors or .ckpt).")
    Path base;

    @Parameters(index = "1", paramLabel = "ERASED", description = "The changed model, same architecture.")
    Path erased;

    @Parameters(index = "2", paramLabel = "OUT", description = "The LoRA file to write (.safetensors).")
    Path out;

    @Option(names = {"--rank", "--lora-rank"}, defaultValue = "8", paramLabel = "R",
            description = "Rank per module, or full (every ΔW exactly). Default: ${DEFAULT-VALUE}.")
    String rank;

    @Option(names = "--dtype", defaultValue = "fp16", paramLabel = "TYPE", description = "fp16, bf16 or fp32. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--overwrite", description = "Replace an existing OUT.")
    boolean overwrite;

    @Option(names = "--ema", description = "Compare each checkpoint's model_ema.* UNet copy where it has one "
            + "(default: the raw UNet weights, as the reference loaders take them).")
    boolean ema;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        LoraSettings settings = new LoraSettings(Flags.about("--rank", () -> LoraSettings.parseRank(rank)),
                Flags.about("--dtype", () -> LoraSettings.parseDtype(dtype)));
        if (!out.getFileName().toString().endsWith(".safetensors")) throw new UserError("OUT: " + out + ": name the LoRA file .safetensors");
        if (Files.exists(out) && !overwrite) throw new UserError("OUT: " + out + " already exists (pass --overwrite to replace it)");
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError("OUT: folder " + parent + " does not exist");
        PrintWriter err = spec.commandLine().getErr();
        ModelWeights.Ema emaChoice = ema ? ModelWeights.Ema.WHERE_PRESENT : ModelWeights.Ema.OFF;
        long start = System.nanoTime();
        try (ModelWeights wa = ModelWeights.open(base, emaChoice); ModelWeights wb = ModelWeights.open(erased, emaChoice)) {
            List<String> names = new ArrayList<>(), unshared = new ArrayList<>();
            for (String n : wa.names(Component.UNET)) if (!wb.names(Component.UNET).contains(n)) unshared.add(n);
            for (String n : wb.names(Component.UNET)) if (!wa.names(Component.UNET).contains(n)) unshared.add(n);
            for (String n : wa.names(Component.UNET)) {
                if (!wb.names(Component.UNET).contains(n)) continue;
                if (!Arrays.equals(wa.shape(Component.UNET, n), wb.shape(Component.UNET, n))) {
                    throw new UserError(erased + ": UNet tensor " + n + " has another shape than in " + base + ": not the same architecture");
                }
                names.add(n);
            }
            if (names.isEmpty()) throw new UserError(base + " and " + erased + " share no UNet tensor");
            // SDXL LoRAs name modules by the original single file's layout (KohyaNames), whichever layout the inputs have
            KohyaNames naming = StableDiffusionXL.isSdxl(base) || StableDiffusionXL.isSdxl(erased)
                    ? KohyaNames.sdxl(wa.names(Component.UNET)) : KohyaNames.DIFFUSERS;
            LoraExtraction.Result result = LoraExtraction.extract(new LoraExtraction.Pair() {
                @Override public SequencedCollection<String> names() { return names; }
                @Override public int[] shape(String n) { return Arrays.stream(wa.shape(Component.UNET, n)).mapToInt(Math::toIntExact).toArray(); }
                @Override public float[] base(String n) { return wa.readFloats(Component.UNET, n); }
                @Override public float[] edited(String n) { return wb.readFloats(Component.UNET, n); }
                @Override public KohyaNames naming() { return naming; }
            }, settings);
            double seconds = (System.nanoTime() - start) / 1e9;
            List<String> otherChanges = changedOutsideUnet(wa, wb);
            Map<String, String> meta = LoraWriter.write(out, result, base, Map.of("esd.lora.source", "extract-lora "
                    + base.getFileName() + " " + erased.getFileName()));
            LoraWriter.report(result).forEach(err::println);
            otherChanges.forEach(n -> err.println("not in the LoRA: " + n + " changed (only the UNet is extracted)"));
            unshared.forEach(n -> err.println("not compared: unet/" + n + " is in only one of the two models"));
            err.printf(Locale.ROOT, "wrote %s (%,d bytes); extraction %.1f s, in all %.1f s; worst residual %s%n", out, sizeOf(out),
                    seconds, (System.nanoTime() - start) / 1e9, meta.get("esd.lora.worst_residual"));
        }
        err.flush();
    }

    /** Text-encoder and VAE tensors that differ: a UNet LoRA leaves them out, so say so. */
    private static List<String> changedOutsideUnet(ModelWeights wa, ModelWeights wb) {
        List<String> changed = new ArrayList<>();
        for (Component c : Component.values()) {
            if (c == Component.UNET) continue;
            for (String n : wa.names(c)) {
                if (!wb.names(c).contains(n) || !Arrays.equals(wa.shape(c, n), wb.shape(c, n))) continue;
                if (!Arrays.equals(wa.readFloats(c, n), wb.readFloats(c, n))) changed.add(c.folder() + "/" + n);
            }
        }
        return changed;
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (java.io.IOException e) {
            return -1;
        }
    }
}
