package esdnative.model;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeWeights;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.CompVisNames.Component;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * Loads a Stable Diffusion checkpoint in either layout (a diffusers folder, a single .safetensors or .ckpt file)
 * into float32 on a backend.
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
     * ({@code --prediction-type}: epsilon, v_prediction), which a single file does not store; null: the scheduler
     * config's (a folder's, or {@code --config}'s), else epsilon. A folder's own value cannot be overridden.
     */
    public static StableDiffusion load(Backend be, Path path, Path tokenizerDir, Path configDir, ModelWeights.Ema ema,
                                       String predictionType) {
        if (predictionType != null && !predictionType.equals("epsilon") && !predictionType.equals("v_prediction")) {
            throw new UserError("--prediction-type: '" + predictionType + "' is not one of epsilon, v_prediction");
        }
        if (!Files.exists(path)) throw new UserError("--model: " + path + " does not exist");
        if (Files.isDirectory(path)) {
            if (ema == ModelWeights.Ema.REQUIRE) {
                throw new UserError("--ema: " + path + " is a diffusers folder; only a CompVis checkpoint holds model_ema.* weights");
            }
            StableDiffusion sd = loadFolder(be, path, tokenizerDir);
            if (predictionType != null && !predictionType.equals(sd.scheduler().predictionType())) {
                throw new UserError("--prediction-type is for single files: " + path + "'s scheduler config says "
                        + sd.scheduler().predictionType());
            }
            return sd;
        }
        return loadSingleFile(be, path, tokenizerDir, configDir, ema, predictionType);
    }

    /**
     * The model's VAE decoder, or null for a pixel-space model without one. A single file's VAE config is read off
     * its shapes (SD's kl-f8 for SD's VAE) unless {@code configDir} holds a vae/config.json.
     */
    public static Vae loadVae(Backend be, StableDiffusion model, Path configDir) {
        if (model.layout() == StableDiffusion.Layout.DIFFUSERS) {
            Path config = model.source().resolve("vae/config.json");
            if (!Files.isRegularFile(config)) return null;
            VaeConfig vc = VaeConfig.fromJson(config);
            return new Vae(vc, VaeWeights.load(be, vc, weightsFile(model.source().resolve("vae"), "diffusion_pytorch_model")));
        }
        try (ModelWeights w = ModelWeights.open(model.source(), ModelWeights.Ema.OFF)) {
            if (w.names(Component.VAE).isEmpty()) return null;
            Path vaeConfig = configDir == null ? null : configDir.resolve("vae/config.json");
            VaeConfig vc;
            if (vaeConfig != null && Files.isRegularFile(vaeConfig)) {
                vc = VaeConfig.fromJson(vaeConfig);
            } else {
                vc = SingleFileArchitecture.vae(w.shapes(Component.VAE));
                warnAssumed(model.source(), "VAE", "vae", SingleFileArchitecture.assumed(vc));
            }
            return new Vae(vc, VaeWeights.load(be, vc, w.shapes(Component.VAE), d -> w.readFloats(Component.VAE, d),
                    model.source().toString()));
        }
    }

    /**
     * The VAE's architecture alone, without reading its weights: a diffusers folder's vae/config.json, else (a single
     * file) {@code configDir}'s, else the one the file's shapes imply, as {@link #loadVae}; null without a VAE.
     */
    public static VaeConfig vaeConfig(StableDiffusion model, Path configDir) {
        if (model.layout() == StableDiffusion.Layout.DIFFUSERS) {
            Path config = model.source().resolve("vae/config.json");
            return Files.isRegularFile(config) ? VaeConfig.fromJson(config) : null;
        }
        Path vaeConfig = configDir == null ? null : configDir.resolve("vae/config.json");
        if (vaeConfig != null && Files.isRegularFile(vaeConfig)) return VaeConfig.fromJson(vaeConfig);
        try (ModelWeights w = ModelWeights.open(model.source(), ModelWeights.Ema.OFF)) {
            return w.names(Component.VAE).isEmpty() ? null : SingleFileArchitecture.vae(w.shapes(Component.VAE));
        }
    }

    /** The UNet's architecture alone, without reading any weights (for dry runs). */
    public static UNetConfig unetConfig(Path path, Path configDir) {
        if (!Files.exists(path)) throw new UserError("--model: " + path + " does not exist");
        if (Files.isDirectory(path)) {
            return UNetConfig.fromJson(require(path.resolve("unet/config.json"), "a diffusers model folder needs unet/config.json"));
        }
        if (configDir != null) {
            return UNetConfig.fromJson(require(configDir.resolve("unet/config.json"), "--config needs unet/config.json"));
        }
        try (ModelWeights w = ModelWeights.open(path, ModelWeights.Ema.OFF)) {
            return SingleFileArchitecture.unet(w.shapes(Component.UNET));
        }
    }

    // ---- diffusers folder ----------------------------------------------------------------------------------

    private static StableDiffusion loadFolder(Backend be, Path dir, Path tokenizerDir) {
        Path unetConfigFile = require(dir.resolve("unet/config.json"), "a diffusers model folder needs unet/config.json");
        UNetConfig unetConfig = UNetConfig.fromJson(unetConfigFile);
        Weights unet = UNetWeights.load(be, unetConfig, weightsFile(dir.resolve("unet"), "diffusion_pytorch_model"));
        ClipTextConfig textConfig = ClipTextConfig.read(require(dir.resolve("text_encoder/config.json"),
                "a diffusers model folder needs text_encoder/config.json"));
        ClipTextModel text;
        try (SafetensorsFile f = SafetensorsFile.open(weightsFile(dir.resolve("text_encoder"), "model"))) {
            text = ClipTextModel.load(be, textConfig, f, "text_model.");
        }
        Path schedulerFile = dir.resolve("scheduler/scheduler_config.json");
        DdimConfig scheduler = Files.isRegularFile(schedulerFile) ? DdimConfig.read(schedulerFile) : DdimConfig.stableDiffusion1();
        ClipTokenizer tokenizer = ClipTokenizer.load(findTokenizer(tokenizerDir, dir));
        return new StableDiffusion(StableDiffusion.Layout.DIFFUSERS, dir, unetConfig, unet, text, tokenizer, scheduler,
                vaeScaleFactor(dir.resolve("vae/config.json")));
    }

    /** name.safetensors in a component folder (the fp16 variant when it is the only one). */
    private static Path weightsFile(Path componentDir, String stem) {
        for (String name : List.of(stem + ".safetensors", stem + ".fp16.safetensors")) {
            Path p = componentDir.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        if (Files.isRegularFile(componentDir.resolve(stem + ".bin"))) {
            throw new UserError(componentDir.resolve(stem + ".bin") + ": PyTorch .bin weights are not read; convert the "
                    + "model to safetensors (esd-native weights convert)");
        }
        throw new UserError(componentDir + ": no " + stem + ".safetensors");
    }

    /** 2^(levels − 1) from the VAE config; 1 when the model has no VAE (pixel-space models). */
    private static int vaeScaleFactor(Path vaeConfig) {
        if (!Files.isRegularFile(vaeConfig)) return 1;
        int levels = Json.tree(vaeConfig).path("block_out_channels").size();
        if (levels < 1) throw new UserError(vaeConfig + ": block_out_channels missing");
        return 1 << (levels - 1);
    }

    // ---- CompVis single file -------------------------------------------------------------------------------

    private static StableDiffusion loadSingleFile(Backend be, Path file, Path tokenizerDir, Path configDir, ModelWeights.Ema ema,
                                                  String predictionType) {
        try (ModelWeights w = ModelWeights.open(file, ema)) {
            if (w.names(Component.UNET).isEmpty()) {
                throw new UserError(file + ": no " + Component.UNET.compVisPrefix() + "* tensors; not a Stable Diffusion single file");
            }
            if (w.usesEma()) {
                System.err.println("note: " + file.getFileName() + ": using the checkpoint's EMA UNet weights (model_ema.*)");
            } else if (w.unmapped().stream().anyMatch(ModelWeights::isEmaWeight)) {
                System.err.println("note: " + file.getFileName() + ": using the raw UNet weights, as diffusers and A1111 load "
                        + "this file; --ema for its model_ema.* copy");
            }
            SequencedMap<String, int[]> unetShapes = w.shapes(Component.UNET);
            UNetConfig unetConfig;
            if (configDir != null) {
                unetConfig = UNetConfig.fromJson(require(configDir.resolve("unet/config.json"), "--config needs unet/config.json"));
            } else {
                unetConfig = SingleFileArchitecture.unet(unetShapes);
                warnAssumed(file, "UNet", "unet", SingleFileArchitecture.assumed(unetConfig));
            }
            Weights unet = UNetWeights.load(be, unetConfig, unetShapes, d -> w.readFloats(Component.UNET, d), file.toString());

            if (w.names(Component.TEXT_ENCODER).isEmpty()) {
                throw new UserError(file + ": no text encoder tensors (cond_stage_model.transformer.* or, SD 2.x, cond_stage_model.model.*)");
            }
            SequencedMap<String, int[]> textShapes = w.shapes(Component.TEXT_ENCODER);
            ClipTextConfig textConfig;
            if (configDir != null) {
                textConfig = ClipTextConfig.read(require(configDir.resolve("text_encoder/config.json"), "--config needs text_encoder/config.json"));
            } else {
                textConfig = SingleFileArchitecture.text(textShapes, w.openClipText());
                warnAssumed(file, "text encoder", "text_encoder", SingleFileArchitecture.assumed(textConfig));
            }
            checkTextShapes(file, textConfig, textShapes);
            ClipTextModel text = ClipTextModel.load(be, textConfig, d -> w.readFloats(Component.TEXT_ENCODER, "text_model." + d));

            Path schedulerFile = configDir == null ? null : configDir.resolve("scheduler/scheduler_config.json");
            boolean configured = schedulerFile != null && Files.isRegularFile(schedulerFile);
            DdimConfig scheduler = configured ? DdimConfig.read(schedulerFile) : DdimConfig.stableDiffusion1();
            if (predictionType != null) {
                scheduler = withPredictionType(scheduler, predictionType);
            } else if (!configured && w.openClipText()) {
                System.err.println("note: " + file.getFileName() + ": an SD 2.x file does not say what its UNet predicts; "
                        + "assuming epsilon (SD 2.x base, 512 px); pass --prediction-type v_prediction for a 768-v model");
            }
            Path folder = file.toAbsolutePath().getParent();
            ClipTokenizer tokenizer = ClipTokenizer.load(findTokenizer(tokenizerDir, configDir != null ? configDir : folder));
            if (w.openClipText() && tokenizer.padId() != SD2_PAD_ID) {
                System.err.println("warning: " + file.getFileName() + ": SD 2.x pads prompts with \"!\" (id 0), this tokenizer with id "
                        + tokenizer.padId() + "; pass --tokenizer DIR, an SD 2.x tokenizer folder");
            }
            int vaeFactor = w.names(Component.VAE).isEmpty() ? 1 : 1 << (w.topology().vaeLevels() - 1);
            return new StableDiffusion(StableDiffusion.Layout.SINGLE_FILE, file, unetConfig, unet, text, tokenizer,
                    scheduler, vaeFactor, ema);
        }
    }

    /** SD 2.x's tokenizer pads with "!" (token 0), SD1.x's with its end token. */
    private static final int SD2_PAD_ID = 0;

    private static DdimConfig withPredictionType(DdimConfig c, String predictionType) {
        return new DdimConfig(c.numTrainTimesteps(), c.betaStart(), c.betaEnd(), c.betaSchedule(), c.trainedBetas(),
                c.clipSample(), c.clipSampleRange(), c.setAlphaToOne(), c.stepsOffset(), predictionType, c.timestepSpacing());
    }

    /**
     * A single file's component whose shapes are no Stable Diffusion model's: its outputs are right only if the values
     * no tensor holds happen to be SD's. Says which were assumed and how to give the real ones.
     */
    private static void warnAssumed(Path file, String component, String folder, List<String> assumed) {
        if (assumed.isEmpty()) return;
        System.err.println("warning: " + file.getFileName() + ": its " + component + " has no Stable Diffusion 1.x/2.x "
                + "shapes, and no tensor holds these values, so SD's were assumed: " + String.join(", ", assumed)
                + "; if the model was made with others its outputs are wrong: pass --config DIR, a diffusers folder "
                + "with this model's " + folder + "/config.json");
    }

    /** Every text encoder parameter the config implies, present with its shape (extra buffers are ignored). */
    private static void checkTextShapes(Path file, ClipTextConfig config, Map<String, int[]> textShapes) {
        for (var e : ClipTextModel.parameterShapes(config).entrySet()) {
            int[] got = textShapes.get("text_model." + e.getKey());
            if (got == null) throw new UserError(file + ": text encoder tensor text_model." + e.getKey() + " is missing");
            if (!Arrays.equals(got, e.getValue())) {
                throw new UserError(file + ": text encoder tensor text_model." + e.getKey() + " has shape "
                        + Arrays.toString(got) + ", the config needs " + Arrays.toString(e.getValue()));
            }
        }
    }

    // ---- shared --------------------------------------------------------------------------------------------

    /**
     * The tokenizer folder: the one given; else the model folder's tokenizer/ (or the folder itself); else the
     * Hugging Face cache's openai/clip-vit-large-patch14; else a message saying how to get one.
     */
    public static Path findTokenizer(Path given, Path modelFolder) {
        if (given != null) {
            if (!hasTokenizer(given)) throw new UserError("--tokenizer: " + given + " has no vocab.json and merges.txt");
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
