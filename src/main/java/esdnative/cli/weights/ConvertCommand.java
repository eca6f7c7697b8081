package esdnative.cli.weights;

import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.DiffusersFolder;
import esdnative.checkpoint.TensorEntries;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.model.vae.VaeConfig;
import esdnative.options.Flags;
import esdnative.model.sdxl.SdxlConversion;
import esdnative.model.sdxl.SdxlSingleFileNames;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.io.AtomicOutput;
import esdnative.io.DType;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.checkpoint.CompVisNames.Component;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code esd-native weights convert IN OUT}: a diffusers folder ↔ a CompVis single file (.safetensors or .ckpt in,
 * .safetensors out), optionally changing the float type, keeping only some components, and taking a checkpoint's
 * EMA UNet instead of its raw one ({@code --ema}; the raw UNet by default, as the reference loaders take it). An SDXL
 * folder ↔ the original SDXL single file, whole and in its own float type.
 */
@Command(name = "convert",
        description = "Convert between a diffusers pipeline folder and a CompVis/LDM single .safetensors file "
                + "(a .ckpt is read safely, never executed); SDXL too (a single file to a folder with --config DIR). "
                + "Same dtype in and out: bit-identical tensors.")
public final class ConvertCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "IN", description = "A diffusers pipeline folder, or a CompVis single file (.safetensors or .ckpt).")
    Path input;

    @Parameters(index = "1", paramLabel = "OUT", description = "A .safetensors file (--to single-file) or a new folder (--to diffusers).")
    Path output;

    @Option(names = "--to", paramLabel = "LAYOUT",
            description = "single-file (alias compvis) or diffusers. Default: single-file when OUT is named like a weight file (.safetensors, .ckpt, ...), else diffusers.")
    String to;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "keep",
            description = "Float type to write: keep, fp32, fp16 or bf16 (also f32, f16; round to nearest even). Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--components", paramLabel = "LIST", split = ",",
            description = "Components to write, of unet, text_encoder, vae. Default: all present.")
    List<String> components;

    @Option(names = "--ema", description = "Write the checkpoint's model_ema.* UNet copy instead of its raw UNet weights "
            + "(the default, as diffusers' single-file loader and A1111 take them); an error when it has none.")
    boolean ema;

    @Option(names = {"--config-from", "--config"}, paramLabel = "DIR",
            description = "--to diffusers: copy config.json, model_index.json, scheduler and tokenizer files from this diffusers folder "
                    + "(an SDXL single file needs it: its block layout comes from these configs).")
    Path configFrom;

    @Option(names = "--overwrite", description = "Replace an existing OUT (a folder only when it is a model folder).")
    boolean overwrite;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        DType target = parseDtype(dtype);
        Boolean toSingleFile = to == null ? null : parseLayout(to);
        // swapping IN and OUT must not destroy a model
        if (Files.exists(output) && !overwrite) throw new UserError("OUT: " + output + " already exists (pass --overwrite to replace it)");
        AtomicOutput.checkReplaceable(output, "OUT");
        if (StableDiffusionXL.isSdxl(input)) {
            convertSdxl(out, toSingleFile);
            out.flush();
            return;
        }
        try (ModelWeights model = ModelWeights.open(input, ema ? ModelWeights.Ema.REQUIRE : ModelWeights.Ema.OFF)) {
            if (model.usesEma()) err.println("using the checkpoint's EMA UNet weights (model_ema.*)");
            Set<Component> selected = selectComponents(model);
            boolean singleFile = toSingleFile != null ? toSingleFile : output.getFileName().toString().matches("(?i).*\\.(safetensors|ckpt|pt|pth|bin)");
            if (singleFile) {
                if (!output.getFileName().toString().endsWith(".safetensors")) {
                    throw new UserError(output + ": a CompVis single file must be written as .safetensors");
                }
                CompVisNames table = CompVisNames.of(model.topology());
                SequencedMap<String, Entry> entries = new LinkedHashMap<>();
                for (Component c : selected) {
                    if (c == Component.TEXT_ENCODER && model.openClipText()) {   // SD 2.x: OpenCLIP layout
                        entries.putAll(TensorEntries.openClipText(model, target));
                        continue;
                    }
                    for (String name : model.names(c)) {
                        String compVis = table.toCompVis(c, name);
                        if (compVis == null) throw new UserError(input + ": " + c.folder() + " tensor " + name + " has no CompVis name");
                        entries.put(compVis, entry(model, c, name, CompVisNames.compVisShape(compVis, model.shape(c, name)), target));
                    }
                }
                AtomicOutput.write(output, "OUT", overwrite, tmp -> SafetensorsWriter.write(tmp, entries, Map.of("format", "pt")));
                report(out, output, entries, model);
            } else {
                if (configFrom != null && !DiffusersFolder.isPipeline(configFrom)) {
                    throw new UserError(configFrom + ": --config-from is not a diffusers pipeline folder");
                }
                AtomicOutput.write(output, "OUT", overwrite, tmp -> {
                    Files.createDirectory(tmp);
                    for (Component c : selected) {
                        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
                        for (String name : model.names(c)) entries.put(name, entry(model, c, name, model.shape(c, name), target));
                        Path dir = Files.createDirectories(tmp.resolve(c.folder()));
                        String file = c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
                        SafetensorsWriter.write(dir.resolve(file), entries, Map.of("format", "pt"));
                        report(out, output.resolve(c.folder()).resolve(file), entries, null);
                    }
                    if (configFrom != null) DiffusersFolder.copyConfigs(configFrom, tmp);
                });
                if (configFrom == null) {
                    out.println("note: no config.json files written; pass --config-from DIR (a diffusers folder of the same architecture)");
                }
                if (!model.unmapped().isEmpty()) out.println("dropped " + model.unmapped().size() + " tensors that are no model weight (e.g. " + model.unmapped().getFirst() + ")");
            }
        }
        out.flush();
        err.flush();
    }

    /**
     * An SDXL folder ↔ the original SDXL single file, every tensor's bytes kept ({@link SdxlConversion}); the block
     * layout comes from the folder's configs, or for a single file from --config DIR's.
     */
    private void convertSdxl(PrintWriter out, Boolean toSingleFile) {
        if (parseDtype(dtype) != null || components != null || ema) {
            throw new UserError("an SDXL model is converted whole, in its own float type: --dtype, --components and --ema are for SD 1.x / 2.x");
        }
        boolean folderIn = Files.isDirectory(input);
        boolean singleFile = toSingleFile != null ? toSingleFile : output.getFileName().toString().matches("(?i).*\\.(safetensors|ckpt|pt|pth|bin)");
        if (singleFile != folderIn) {
            throw new UserError(input + ": already " + (folderIn ? "a diffusers folder" : "a single file") + "; nothing to convert");
        }
        if (singleFile && !output.getFileName().toString().endsWith(".safetensors")) {
            throw new UserError(output + ": a single file must be written as .safetensors");
        }
        if (!folderIn && configFrom == null) {
            throw new UserError(input + ": an SDXL single file needs --config DIR, a diffusers SDXL folder for its configs and tokenizers");
        }
        Path configDir = folderIn ? input : configFrom;
        SdxlSingleFileNames names = Flags.about(folderIn ? "IN" : "--config", () -> new SdxlSingleFileNames(StableDiffusionXL.topology(
                StableDiffusionXL.unetConfig(configDir, configDir), VaeConfig.fromJson(configDir.resolve("vae/config.json")))));
        if (singleFile) {
            Map<String, SafetensorsFile> files = new LinkedHashMap<>();
            try (Arena arena = Arena.ofConfined()) {
                for (String c : SdxlConversion.COMPONENTS) {
                    Path file = input.resolve(SdxlConversion.weightsFile(c));
                    if (!Files.isRegularFile(file)) throw new UserError(file + " not found: an SDXL diffusers folder needs it");
                    files.put(c, SafetensorsFile.open(file));
                }
                SequencedMap<String, Entry> entries = SdxlConversion.toSingleFile(files, names, arena);
                AtomicOutput.write(output, "OUT", overwrite, tmp -> SafetensorsWriter.write(tmp, entries, Map.of("format", "pt")));
                report(out, output, entries, null);
            } finally {
                files.values().forEach(SafetensorsFile::close);
            }
            return;
        }
        List<String> dropped = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(input)) {
            Map<String, SequencedMap<String, Entry>> byComponent = SdxlConversion.toFolder(f, names, dropped);
            AtomicOutput.write(output, "OUT", overwrite, tmp -> {
                Files.createDirectory(tmp);
                for (var c : byComponent.entrySet()) {
                    Path file = tmp.resolve(SdxlConversion.weightsFile(c.getKey()));
                    Files.createDirectories(file.getParent());
                    SafetensorsWriter.write(file, c.getValue(), Map.of("format", "pt"));
                    report(out, output.resolve(SdxlConversion.weightsFile(c.getKey())), c.getValue(), null);
                }
                DiffusersFolder.copyConfigs(configDir, tmp);
            });
        }
        if (!dropped.isEmpty()) out.println("dropped " + dropped.size() + " tensors that are no model weight (e.g. " + dropped.getFirst() + ")");
    }

    /** fp32/f32, fp16/f16, bf16, or keep (null). */
    static DType parseDtype(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "keep" -> null;
            case "fp32", "f32", "float32" -> DType.F32;
            case "fp16", "f16", "float16" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new UserError("--dtype: '" + s + "' is not one of keep, fp32, fp16, bf16");
        };
    }

    /** True for a single file. */
    private static boolean parseLayout(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "single-file", "compvis" -> true;
            case "diffusers" -> false;
            default -> throw new UserError("--to: '" + s + "' is not one of single-file, diffusers");
        };
    }

    private Set<Component> selectComponents(ModelWeights model) {
        if (components == null) return model.components();
        Set<Component> selected = EnumSet.noneOf(Component.class);
        for (String name : components) {
            Component c = Arrays.stream(Component.values()).filter(k -> k.folder().equals(name.trim())).findFirst()
                    .orElseThrow(() -> new UserError("--components: '" + name + "' is not one of unet, text_encoder, vae"));
            if (!model.components().contains(c)) throw new UserError("--components: " + input + " has no " + c.folder());
            selected.add(c);
        }
        return selected;
    }

    /** One tensor to write: a zero-copy view when the dtype stays, else converted floats. */
    private static Entry entry(ModelWeights model, Component c, String name, long[] shape, DType target) {
        return TensorEntries.of(model.source(c, name), shape, target);
    }

    private void report(PrintWriter out, Path file, SequencedMap<String, Entry> entries, ModelWeights model) {
        long bytes = 0;
        for (Entry e : entries.values()) {
            long n = e.dtype().bytes();
            for (long d : e.shape()) n *= d;
            bytes += n;
        }
        out.printf(Locale.ROOT, "wrote %s: %d tensors, %,d bytes of data%n", file, entries.size(), bytes);
        if (model != null && !model.unmapped().isEmpty()) {
            out.println("dropped " + model.unmapped().size() + " tensors that are no model weight (e.g. " + model.unmapped().getFirst() + ")");
        }
    }
}
