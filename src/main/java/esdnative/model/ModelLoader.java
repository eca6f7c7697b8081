package esdnative.model;

import esdnative.backend.Backend;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.ExpectedTensors;
import esdnative.checkpoint.Layout;
import esdnative.checkpoint.ModelWeights;
import esdnative.io.Json;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeWeights;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;
import esdnative.util.UserError;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * Loads a Stable Diffusion checkpoint in any layout (a diffusers folder, a single .safetensors or .ckpt file) into
 * float32 on a backend, by one road: {@link #load}. The layouts and the folder rule are README.md's "Model layouts";
 * reading them is {@link ModelWeights}'s.
 *
 * <p>A diffusers folder carries its architecture in config.json files. A single file does not: its UNet and text
 * encoder shapes are read off the tensors, and what shapes cannot tell (group-norm groups, head counts, the text
 * encoder's activation) takes Stable Diffusion's values (SD1.x: 32 groups, 8 heads, quick_gelu, 12 text heads;
 * SD 2.x, told by its OpenCLIP {@code cond_stage_model.model.*} text tower: gelu, 64-channel text heads, epsilon
 * unless {@code --prediction-type}), unless {@code configDir} names a diffusers folder whose config files to use
 * instead.
 */
public final class ModelLoader {
    private ModelLoader() {}

    /** {@link #load(Backend, Path, Path, Path, ModelWeights.Ema)} with a checkpoint's raw UNet weights. */
    public static StableDiffusion load(Backend be, Path path, Path tokenizerDir, Path configDir) {
        return load(be, path, tokenizerDir, configDir, ModelWeights.Ema.OFF);
    }

    /**
     * @param path         a diffusers folder, or a CompVis single file: .safetensors, or a PyTorch .ckpt (read without
     *                     executing it)
     * @param tokenizerDir a folder with vocab.json and merges.txt, or null to search (model folder, then the
     *                     Hugging Face cache's openai/clip-vit-large-patch14)
     * @param configDir    for a single file: a diffusers folder whose unet/text_encoder/scheduler configs to use; or null
     * @param ema          a checkpoint's raw UNet weights ({@code OFF}, what the reference loaders take) or its
     *                     model_ema.* copy ({@code REQUIRE}: {@code --ema}, an error for a file without one)
     */
    public static StableDiffusion load(Backend be, Path path, Path tokenizerDir, Path configDir, ModelWeights.Ema ema) {
        return load(be, path, tokenizerDir, configDir, ema, null);
    }

    /**
     * {@link #load(Backend, Path, Path, Path, ModelWeights.Ema)} with the scheduler's prediction type given
     * (epsilon, v_prediction), which a single file does not store; null: the scheduler config's (a folder's, or
     * {@code configDir}'s), else epsilon. A folder's own value cannot be overridden.
     *
     * <p>The one road from disk to the model, for every layout: the source is opened as {@link ModelWeights}
     * (diffusers names, whatever the source's), each part passes the one name-and-shape check
     * ({@link ExpectedTensors}) against its config and is read from it, and the model keeps the opened source, from
     * which its outputs are written.
     */
    public static StableDiffusion load(Backend be, Path path, Path tokenizerDir, Path configDir, ModelWeights.Ema ema,
                                       String predictionType) {
        if (predictionType != null) checkPredictionType(predictionType);
        if (!Files.exists(path)) throw new UserError("model path " + path + " does not exist");
        if (StableDiffusionXL.isSdxl(path)) throw StableDiffusionXL.notSupportedHere(path);
        if (ema == ModelWeights.Ema.REQUIRE) checkEmaSource(path);
        ModelWeights w = ModelWeights.open(path, ema);
        try {
            return read(be, w, tokenizerDir, configDir, predictionType);
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    /** Refuses a prediction type other than epsilon and v_prediction. */
    public static void checkPredictionType(String predictionType) {
        if (!predictionType.equals("epsilon") && !predictionType.equals("v_prediction")) {
            throw new UserError("unknown prediction type '" + predictionType + "'; valid: epsilon, v_prediction");
        }
    }

    /**
     * Refuses a prediction type that is not epsilon or v_prediction, or that differs from a diffusers folder's own
     * (its scheduler config's, else epsilon): a folder's value cannot be overridden.
     */
    public static void checkPredictionType(Path model, String predictionType) {
        checkPredictionType(predictionType);
        if (Files.isDirectory(model)) {
            Path file = model.resolve("scheduler/scheduler_config.json");
            checkFolderPredictionType(model, Files.isRegularFile(file) ? DdimConfig.read(file) : DdimConfig.stableDiffusion1(), predictionType);
        }
    }

    private static void checkFolderPredictionType(Path folder, DdimConfig scheduler, String predictionType) {
        if (!predictionType.equals(scheduler.predictionType())) {
            throw new UserError("a prediction type is for single files: " + folder + "'s scheduler config says "
                    + scheduler.predictionType());
        }
    }

    /** Refuses a single file's config folder that lacks the UNet's or the text encoder's config, which load reads. */
    public static void checkConfigFolder(Path configDir) {
        require(configDir.resolve("unet/config.json"), "the config folder needs unet/config.json");
        require(configDir.resolve("text_encoder/config.json"), "the config folder needs text_encoder/config.json");
    }

    /** Refuses to take an EMA UNet from a diffusers folder, which holds none. */
    public static void checkEmaSource(Path path) {
        if (Files.isDirectory(path)) {
            throw new UserError(path + " is a diffusers folder; only a CompVis checkpoint holds model_ema.* (EMA) weights");
        }
    }

    private static StableDiffusion read(Backend be, ModelWeights w, Path tokenizerDir, Path configDir, String predictionType) {
        Path path = w.path();
        boolean folder = w.layout() == Layout.DIFFUSERS;
        if (!folder) noteEma(w);
        UNetConfig unetConfig = unetConfig(w, configDir);
        Weights unet = unetWeights(be, unetConfig, w);
        ClipTextModel text = textEncoder(be, textConfig(w, configDir), w);

        Path schedulerFile = folder ? path.resolve("scheduler/scheduler_config.json")
                : configDir == null ? null : configDir.resolve("scheduler/scheduler_config.json");
        boolean configured = schedulerFile != null && Files.isRegularFile(schedulerFile);
        DdimConfig scheduler = configured ? DdimConfig.read(schedulerFile) : DdimConfig.stableDiffusion1();
        if (folder) {
            if (predictionType != null) checkFolderPredictionType(path, scheduler, predictionType);
        } else if (predictionType != null) {
            scheduler = withPredictionType(scheduler, predictionType);
        } else if (!configured && w.openClipText()) {
            System.err.println("note: " + path.getFileName() + ": an SD 2.x file does not say what its UNet predicts; "
                    + "assuming epsilon (SD 2.x base, 512 px); pass --prediction-type v_prediction for a 768-v model");
        }

        Path tokenizerFolder = folder ? path : configDir != null ? configDir : path.toAbsolutePath().getParent();
        ClipTokenizer tokenizer = ClipTokenizer.load(findTokenizer(tokenizerDir, tokenizerFolder));
        if (!folder && w.openClipText() && tokenizer.padId() != SD2_PAD_ID) {
            System.err.println("warning: " + path.getFileName() + ": SD 2.x pads prompts with \"!\" (id 0), this tokenizer with id "
                    + tokenizer.padId() + "; pass --tokenizer DIR, an SD 2.x tokenizer folder");
        }
        int vaeFactor = folder ? vaeScaleFactor(path.resolve("vae/config.json"))
                : w.names(Component.VAE).isEmpty() ? 1 : 1 << (w.topology().vaeLevels() - 1);
        return new StableDiffusion(w, unetConfig, unet, text, tokenizer, scheduler, vaeFactor);
    }

    /** Says which UNet weights of a checkpoint are used when it holds an EMA copy. */
    private static void noteEma(ModelWeights w) {
        if (w.usesEma()) {
            System.err.println("note: " + w.path().getFileName() + ": using the checkpoint's EMA UNet weights (model_ema.*)");
        } else if (w.unmapped().stream().anyMatch(ModelWeights::isEmaWeight)) {
            System.err.println("note: " + w.path().getFileName() + ": using the raw UNet weights, as diffusers and A1111 load "
                    + "this file; --ema for its model_ema.* copy");
        }
    }

    /** A folder's unet/config.json; a single file's {@code configDir}'s, else the one its shapes imply (warned). */
    private static UNetConfig unetConfig(ModelWeights w, Path configDir) {
        if (w.layout() == Layout.DIFFUSERS) {
            return UNetConfig.fromJson(require(w.path().resolve("unet/config.json"), "a diffusers model folder needs unet/config.json"));
        }
        if (w.names(Component.UNET).isEmpty()) {
            throw new UserError(w.path() + ": no " + Component.UNET.compVisPrefix() + "* tensors; not a Stable Diffusion single file");
        }
        if (configDir != null) {
            return UNetConfig.fromJson(require(configDir.resolve("unet/config.json"), "the config folder needs unet/config.json"));
        }
        UNetConfig c = SingleFileArchitecture.unet(w.shapes(Component.UNET));
        warnAssumed(w.path(), "UNet", "unet", SingleFileArchitecture.assumed(c));
        return c;
    }

    /** A folder's text_encoder/config.json; a single file's {@code configDir}'s, else the one its shapes imply (warned). */
    private static ClipTextConfig textConfig(ModelWeights w, Path configDir) {
        if (w.layout() == Layout.DIFFUSERS) {
            return ClipTextConfig.read(require(w.path().resolve("text_encoder/config.json"),
                    "a diffusers model folder needs text_encoder/config.json"));
        }
        if (w.names(Component.TEXT_ENCODER).isEmpty()) {
            throw new UserError(w.path() + ": no text encoder tensors (cond_stage_model.transformer.* or, SD 2.x, cond_stage_model.model.*)");
        }
        if (configDir != null) {
            return ClipTextConfig.read(require(configDir.resolve("text_encoder/config.json"), "the config folder needs text_encoder/config.json"));
        }
        ClipTextConfig c = SingleFileArchitecture.text(w.shapes(Component.TEXT_ENCODER), w.openClipText());
        warnAssumed(w.path(), "text encoder", "text_encoder", SingleFileArchitecture.assumed(c));
        return c;
    }

    /** Every UNet parameter {@code config} implies, read from the source after the name-and-shape check. */
    public static Weights unetWeights(Backend be, UNetConfig config, ModelWeights w) {
        return UNetWeights.load(be, config, w.shapes(Component.UNET), d -> w.readFloats(Component.UNET, d),
                componentFile(w, Component.UNET).toString());
    }

    /** The CLIP text encoder {@code config} implies, read from the source after the name-and-shape check. */
    public static ClipTextModel textEncoder(Backend be, ClipTextConfig config, ModelWeights w) {
        SequencedMap<String, int[]> expected = ClipTextModel.parameterShapes(config);
        SequencedMap<String, int[]> stored = new LinkedHashMap<>();   // as the source names them
        expected.forEach((name, shape) -> stored.put(TEXT_PREFIX + name, shape));
        ExpectedTensors.check(stored, w.shapes(Component.TEXT_ENCODER), ExpectedTensors.Extras.IGNORED,
                componentFile(w, Component.TEXT_ENCODER), "text encoder");
        return new ClipTextModel(be, config,
                Weights.load(be, expected, d -> w.readFloats(Component.TEXT_ENCODER, TEXT_PREFIX + d)));
    }

    /** The VAE decoder {@code config} implies, read from the source after the name-and-shape check. */
    public static Weights vaeWeights(Backend be, VaeConfig config, ModelWeights w) {
        return VaeWeights.load(be, config, w.shapes(Component.VAE), d -> w.readFloats(Component.VAE, d),
                componentFile(w, Component.VAE).toString());
    }

    /** transformers' CLIPTextModel names its parameters text_model.*; {@link ClipTextModel} without the prefix. */
    private static final String TEXT_PREFIX = "text_model.";

    /** Where a part is read from, for messages: its file in a folder, else the single file. */
    private static Path componentFile(ModelWeights w, Component c) {
        Path file = w.file(c);
        return file != null ? file : w.layout() == Layout.DIFFUSERS ? w.path().resolve(c.folder()) : w.path();
    }

    /**
     * The model's VAE decoder, or null for a pixel-space model without one. A single file's VAE config is read off
     * its shapes (SD's kl-f8 for SD's VAE) unless {@code configDir} holds a vae/config.json.
     */
    public static Vae loadVae(Backend be, StableDiffusion model, Path configDir) {
        VaeConfig vc = vaeConfig(model, configDir, true);
        return vc == null ? null : new Vae(vc, vaeWeights(be, vc, model.checkpoint()));
    }

    /**
     * The VAE's architecture alone, without reading its weights: a diffusers folder's vae/config.json, else (a single
     * file) {@code configDir}'s, else the one the file's shapes imply, as {@link #loadVae}; null without a VAE.
     */
    public static VaeConfig vaeConfig(StableDiffusion model, Path configDir) {
        return vaeConfig(model, configDir, false);
    }

    private static VaeConfig vaeConfig(StableDiffusion model, Path configDir, boolean warnAssumed) {
        ModelWeights w = model.checkpoint();
        if (w.layout() == Layout.DIFFUSERS) {
            Path config = w.path().resolve("vae/config.json");
            return Files.isRegularFile(config) ? VaeConfig.fromJson(config) : null;
        }
        if (w.names(Component.VAE).isEmpty()) return null;
        Path given = configDir == null ? null : configDir.resolve("vae/config.json");
        if (given != null && Files.isRegularFile(given)) return VaeConfig.fromJson(given);
        VaeConfig vc = SingleFileArchitecture.vae(w.shapes(Component.VAE));
        if (warnAssumed) warnAssumed(w.path(), "VAE", "vae", SingleFileArchitecture.assumed(vc));
        return vc;
    }

    /** The UNet's architecture alone, without reading any weights (for dry runs). */
    public static UNetConfig unetConfig(Path path, Path configDir) {
        if (!Files.exists(path)) throw new UserError("model path " + path + " does not exist");
        if (Files.isDirectory(path)) {
            return UNetConfig.fromJson(require(path.resolve("unet/config.json"), "a diffusers model folder needs unet/config.json"));
        }
        if (configDir != null) {
            return UNetConfig.fromJson(require(configDir.resolve("unet/config.json"), "the config folder needs unet/config.json"));
        }
        try (ModelWeights w = ModelWeights.open(path, ModelWeights.Ema.OFF)) {
            return SingleFileArchitecture.unet(w.shapes(Component.UNET));
        }
    }

    /** 2^(levels − 1) from the VAE config; 1 when the model has no VAE (pixel-space models). */
    private static int vaeScaleFactor(Path vaeConfig) {
        if (!Files.isRegularFile(vaeConfig)) return 1;
        int levels = Json.tree(vaeConfig).path("block_out_channels").size();
        if (levels < 1) throw new UserError(vaeConfig + ": block_out_channels missing");
        return 1 << (levels - 1);
    }

    /** SD 2.x's tokenizer pads with "!" (token 0), SD1.x's with its end token. */
    private static final int SD2_PAD_ID = 0;

    private static DdimConfig withPredictionType(DdimConfig c, String predictionType) {
        return new DdimConfig(c.numTrainTimesteps(), c.betaStart(), c.betaEnd(), c.betaSchedule(), c.trainedBetas(),
                c.clipSample(), c.clipSampleRange(), c.setAlphaToOne(), c.stepsOffset(), predictionType, c.timestepSpacing());
    }

    /**
     * A single file's component whose shapes are no Stable Diffusion model's: its outputs are right only if the values
     * no tensor holds happen to be SD's. Says which were assumed and what gives the real ones (in the core's words: a
     * command adds its option's name, see {@link #assumedParts}).
     */
    private static void warnAssumed(Path file, String component, String folder, List<String> assumed) {
        if (assumed.isEmpty()) return;
        System.err.println("warning: " + file.getFileName() + ": its " + component + " has no Stable Diffusion 1.x/2.x "
                + "shapes, and no tensor holds these values, so SD's were assumed: " + String.join(", ", assumed)
                + "; if the model was made with others its outputs are wrong: pass a config, a diffusers folder "
                + "with this model's " + folder + "/config.json");
    }

    /**
     * Where the loader assumed parts of a single file's architecture (and warned, in the core's words: "pass a
     * config"), a line saying how the command passes one: {@code option}, e.g. "--config DIR". Prints nothing when
     * nothing was assumed.
     */
    public static void hintConfig(PrintStream err, StableDiffusion model, Path configDir, String option) {
        List<String> parts = assumedParts(model, configDir);
        if (parts.isEmpty()) return;
        err.println("hint: " + option + " passes the config of this model's " + String.join(", ", parts)
                + ": a diffusers folder with its config.json files");
    }

    /**
     * The parts of a loaded model ("UNet", "text encoder", "VAE") whose architecture was assumed rather than read,
     * each warned about while loading: a single file's parts whose shapes are no SD model's, when no
     * {@code configDir} was given. Empty for a folder, which has its configs.
     */
    public static List<String> assumedParts(StableDiffusion model, Path configDir) {
        if (configDir != null || model.layout() != Layout.SINGLE_FILE) return List.of();
        List<String> parts = new ArrayList<>();
        if (!SingleFileArchitecture.assumed(model.unet()).isEmpty()) parts.add("UNet");
        if (!SingleFileArchitecture.assumed(model.textEncoder().config()).isEmpty()) parts.add("text encoder");
        VaeConfig vae = vaeConfig(model, null);
        if (vae != null && !SingleFileArchitecture.assumed(vae).isEmpty()) parts.add("VAE");
        return parts;
    }

    // ---- shared --------------------------------------------------------------------------------------------

    /**
     * The tokenizer folder: the one given; else the model folder's tokenizer/ (or the folder itself); else the
     * Hugging Face cache's openai/clip-vit-large-patch14; else a message saying how to get one.
     */
    public static Path findTokenizer(Path given, Path modelFolder) {
        if (given != null) {
            if (!hasTokenizer(given)) throw new UserError("tokenizer folder " + given + " has no vocab.json and merges.txt");
            return given;
        }
        List<Path> candidates = new ArrayList<>();
        if (modelFolder != null) {
            candidates.add(modelFolder.resolve("tokenizer"));
            candidates.add(modelFolder);
        }
        candidates.addAll(huggingFaceCacheSnapshots());
        for (Path p : candidates) if (hasTokenizer(p)) return p;
        throw new UserError("no CLIP tokenizer found next to the model or in the Hugging Face cache; pass --tokenizer DIR "
                + "(a folder with vocab.json and merges.txt, e.g. the tokenizer/ folder of any SD1.x diffusers model)");
    }

    private static boolean hasTokenizer(Path dir) {
        return Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"));
    }

    private static List<Path> huggingFaceCacheSnapshots() {
        String hfHome = System.getenv("HF_HOME");
        Path hub = hfHome != null ? Path.of(hfHome, "hub") : Path.of(System.getProperty("user.home"), ".cache", "huggingface", "hub");
        Path snapshots = hub.resolve("models--openai--clip-vit-large-patch14").resolve("snapshots");
        if (!Files.isDirectory(snapshots)) return List.of();
        try (Stream<Path> s = Files.list(snapshots)) {
            return s.sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    private static Path require(Path p, String why) {
        if (!Files.isRegularFile(p)) throw new UserError(p + " not found: " + why);
        return p;
    }
}
