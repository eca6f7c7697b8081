package esdnative.cli.weights;

import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.DiffusersFolder;
import esdnative.checkpoint.TensorEntries;
import esdnative.model.ModelConfig;
import esdnative.options.Flags;
import esdnative.model.vae.AutoencoderShapes;
import esdnative.util.UserError;
import esdnative.io.AtomicOutput;
import esdnative.io.DType;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.model.sdxl.SdxlConfig;
import esdnative.model.sdxl.SdxlConversion;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.util.Rng;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.CompVisNames.Topology;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SequencedMap;

/**
 * {@code esd-native weights make-tiny}: a model of random weights for any architecture, in either layout, for tests
 * and benchmarks. Weights are drawn like PyTorch's default layer init (uniform ±1/√fan_in), norm scales near 1,
 * small biases and embeddings; the same seed gives the same values in both layouts. SDXL by name or from an SDXL folder's
 * configs.
 */
@Command(name = "make-tiny",
        description = "Write a Stable Diffusion model of random weights (a diffusers folder or a CompVis single file).")
public final class MakeTinyCommand implements Runnable {
    @Option(names = "--config", required = true, paramLabel = "CONFIG",
            description = "sd14-tiny, sd2-tiny, sdxl-tiny, sd14, sd2, sdxl (full size), or a diffusers folder (or its model_index.json) "
                    + "whose configs to use (SDXL, built in or a folder: an SDXL model, as a folder).")
    String config;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Random seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--layout", defaultValue = "diffusers", paramLabel = "L",
            description = "diffusers (a folder with configs) or single-file (a CompVis .safetensors). Default: ${DEFAULT-VALUE}.")
    String layout;

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "TYPE", description = "fp32, fp16 or bf16. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "diffusers layout: copy vocab.json and merges.txt from this folder into OUT/tokenizer "
                    + "(a built-in SDXL: into tokenizer/ and tokenizer_2/; needed).")
    Path tokenizer;

    @Parameters(index = "0", paramLabel = "OUT", description = "The folder or .safetensors file to create.")
    Path output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        boolean singleFile = switch (layout) {
            case "single-file", "compvis" -> true;
            case "diffusers" -> false;
            default -> throw new UserError("--layout: '" + layout + "' is not one of diffusers, single-file");
        };
        DType parsed = ConvertCommand.parseDtype(dtype);
        DType type = parsed == null ? DType.F32 : parsed;
        if (tokenizer != null && singleFile) throw new UserError("--tokenizer: only a diffusers folder holds a tokenizer; drop it for --layout single-file");
        if (tokenizer != null && !Files.isRegularFile(tokenizer.resolve("vocab.json"))) {
            throw new UserError("--tokenizer: " + tokenizer + " has no vocab.json");
        }
        Path sdxlFolder = sdxlConfigFolder();
        SdxlConfig sdxl = sdxlFolder != null ? Flags.about("--config", () -> SdxlConfig.fromFolder(sdxlFolder)) : SdxlConfig.named(config);
        if (sdxl != null) {
            if (singleFile) throw new UserError("--layout single-file: an SDXL model is made as a folder; then `weights convert` it to a single file");
            if (tokenizer != null && sdxlFolder != null) throw new UserError("--tokenizer: an SDXL model takes both tokenizers from its --config folder");
            if (tokenizer == null && sdxlFolder == null) {
                throw new UserError("--tokenizer: a built-in SDXL model needs CLIP's tokenizer folder (vocab.json, merges.txt) for its two tokenizers");
            }
            out.printf(Locale.ROOT, "wrote %s: %,d random parameters (%s, seed %d)%n", output, makeSdxl(sdxl, sdxlFolder, type), config, seed);
            out.flush();
            return;
        }
        ModelConfig model = Flags.about("--config", () -> ModelConfig.of(config));
        Rng rng = new Rng(seed);
        long[] count = {0};
        if (singleFile) {
            if (!output.getFileName().toString().endsWith(".safetensors")) {
                throw new UserError(output + ": a single file must be named .safetensors");
            }
            if (Files.exists(output)) throw new UserError(output + ": already exists");
            Map<Component, SequencedMap<String, Entry>> weights = new EnumMap<>(Component.class);
            for (Component c : Component.values()) weights.put(c, random(model, c, rng, type));
            Topology topology = Topology.fromDiffusers(weights.get(Component.UNET).keySet(), weights.get(Component.VAE).keySet());
            CompVisNames table = CompVisNames.of(topology);
            SequencedMap<String, Entry> entries = new LinkedHashMap<>();
            boolean openClip = !model.text().hiddenAct().equals("quick_gelu");   // SD 2.x: OpenCLIP layout
            weights.forEach((c, tensors) -> {
                if (c == Component.TEXT_ENCODER && openClip) {
                    entries.putAll(TensorEntries.openClipText(tensors, config));
                    tensors.values().forEach(e -> count[0] += e.floats().length);
                }
            });
            weights.forEach((c, tensors) -> tensors.forEach((name, e) -> {
                if (c == Component.TEXT_ENCODER && openClip) return;
                String compVis = table.toCompVis(c, name);
                entries.put(compVis, Entry.floats(e.dtype(), CompVisNames.compVisShape(compVis, e.shape()), e.floats()));
                count[0] += e.floats().length;
            }));
            SafetensorsWriter.write(output, entries, Map.of("format", "pt"));
        } else {
            AtomicOutput.write(output, "OUT", false, tmp -> {
                Files.createDirectory(tmp);
                for (var f : model.diffusersFiles().entrySet()) {
                    Path p = tmp.resolve(f.getKey());
                    Files.createDirectories(p.getParent());
                    Files.writeString(p, f.getValue());
                }
                // one component in memory at a time, drawn in the same order as for a single file
                for (Component c : Component.values()) {
                    SequencedMap<String, Entry> entries = random(model, c, rng, type);
                    entries.values().forEach(e -> count[0] += e.floats().length);
                    String file = c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
                    SafetensorsWriter.write(tmp.resolve(c.folder()).resolve(file), entries, Map.of("format", "pt"));
                }
                if (tokenizer != null) {
                    Files.createDirectories(tmp.resolve("tokenizer"));
                    for (String f : List.of("vocab.json", "merges.txt")) Files.copy(tokenizer.resolve(f), tmp.resolve("tokenizer").resolve(f));
                }
            });
        }
        out.printf(Locale.ROOT, "wrote %s: %,d random parameters (%s, seed %d)%n", output, count[0], config, seed);
        out.flush();
    }

    /** One component's parameters in diffusers names, drawn in declaration order from {@code rng}. */
    private static SequencedMap<String, Entry> random(ModelConfig model, Component c, Rng rng, DType dtype) {
        SequencedMap<String, int[]> shapes = switch (c) {
            case UNET -> UNet2DConditionModel.parameterShapes(model.unet());
            case TEXT_ENCODER -> ClipTextModel.parameterShapes(model.text());
            case VAE -> AutoencoderShapes.all(model.vae());
        };
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        addRandom(entries, c == Component.TEXT_ENCODER ? "text_model." : "", shapes, rng, dtype);
        return entries;
    }

    /** Adds {@code shapes}' tensors, named {@code prefix} + name, drawn in order from {@code rng}. */
    private static void addRandom(SequencedMap<String, Entry> entries, String prefix, SequencedMap<String, int[]> shapes, Rng rng, DType dtype) {
        shapes.forEach((name, shape) -> entries.put(prefix + name, Entry.floats(dtype, shape, values(name, shape, rng))));
    }

    /** The SDXL diffusers folder --config names, or null when it names none (a built-in name, an SD folder). */
    private Path sdxlConfigFolder() {
        if (SdxlConfig.NAMES.contains(config)) return null;
        Path p = Path.of(config);
        if (p.getFileName() != null && p.getFileName().toString().equals("model_index.json")) p = p.toAbsolutePath().getParent();
        return Files.isDirectory(p) && StableDiffusionXL.isSdxlFolder(p) ? p : null;
    }

    /**
     * An SDXL folder of random weights of architecture {@code arch}: unet, vae, text_encoder and text_encoder_2 (with
     * its projection), drawn in that order; the configs and tokenizers copied from {@code configs}, or for a built-in
     * architecture (null) written, with --tokenizer's vocabulary for both tokenizers. The parameter count.
     */
    private long makeSdxl(SdxlConfig arch, Path configs, DType type) {
        Rng rng = new Rng(seed);
        long[] count = {0};
        AtomicOutput.write(output, "OUT", false, tmp -> {
            Files.createDirectory(tmp);
            if (configs != null) {
                DiffusersFolder.copyConfigs(configs, tmp);
            } else {
                for (var f : arch.diffusersFiles().entrySet()) {
                    Path p = tmp.resolve(f.getKey());
                    Files.createDirectories(p.getParent());
                    Files.writeString(p, f.getValue());
                }
                for (String folder : List.of("tokenizer", "tokenizer_2")) {
                    for (String f : List.of("vocab.json", "merges.txt")) Files.copy(tokenizer.resolve(f), tmp.resolve(folder).resolve(f));
                }
            }
            for (String c : SdxlConversion.COMPONENTS) {
                SequencedMap<String, Entry> entries = new LinkedHashMap<>();
                switch (c) {
                    case "unet" -> addRandom(entries, "", UNet2DConditionModel.parameterShapes(arch.unet()), rng, type);
                    case "vae" -> addRandom(entries, "", AutoencoderShapes.all(arch.vae()), rng, type);
                    case "text_encoder" -> addRandom(entries, "text_model.", ClipTextModel.parameterShapes(arch.text()), rng, type);
                    default -> {
                        addRandom(entries, "text_model.", ClipTextModel.parameterShapes(arch.text2()), rng, type);
                        addRandom(entries, "", ClipTextModelWithProjection.projectionShapes(arch.text2(), arch.projectionDim()), rng, type);
                    }
                }
                entries.values().forEach(e -> count[0] += e.floats().length);
                SafetensorsWriter.write(tmp.resolve(SdxlConversion.weightsFile(c)), entries, Map.of("format", "pt"));
            }
        });
        return count[0];
    }

    /** uniform ±1/√fan_in for layer weights, 1 ± 0.1 for norm scales, ±0.02 for biases and embeddings. */
    private static float[] values(String name, int[] shape, Rng rng) {
        int n = 1;
        for (int d : shape) n = Math.multiplyExact(n, d);
        float[] v = new float[n];
        boolean embedding = name.contains("embedding.weight") && !name.contains("time_embedding");
        double centre = 0, bound;
        if (shape.length >= 2 && !embedding) {
            bound = 1 / Math.sqrt((double) n / shape[0]);
        } else if (shape.length == 1 && name.endsWith(".weight")) {
            centre = 1;
            bound = 0.1;
        } else {
            bound = 0.02;
        }
        for (int i = 0; i < n; i++) v[i] = (float) (centre + bound * (2 * rng.nextDouble() - 1));
        return v;
    }
}
