package esdnative.bench;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;

import java.nio.file.Path;

/**
 * The model a benchmark runs: a UNet with its weights, a text encoder and the VAE's pixels-per-latent factor,
 * loaded from a checkpoint or built from a named configuration with random weights; the tokenizer may be null
 * (random weights without --tokenizer), and only the ESD iteration needs it.
 */
record BenchModel(String description, UNetConfig unetConfig, Weights unetWeights, ClipTextModel textEncoder,
                  ClipTokenizer tokenizer, DdimConfig scheduler, int vaeScaleFactor) {

    UNet2DConditionModel unet() { return new UNet2DConditionModel(unetConfig); }

    /** Default resolution in pixels: the UNet's sample size times the VAE factor. */
    int defaultResolution() { return unetConfig.sampleSize() * vaeScaleFactor; }

    /** The whole model as training sees it (no source files: nothing is written). */
    StableDiffusion stableDiffusion() {
        return new StableDiffusion(null, unetConfig, unetWeights, textEncoder, tokenizer, scheduler, vaeScaleFactor);
    }

    static BenchModel load(Backend be, Path path, Path tokenizerDir) {
        try (StableDiffusion sd = ModelLoader.load(be, path, tokenizerDir, null)) {
            return new BenchModel(path.toString(), sd.unet(), sd.unetWeights(), sd.textEncoder(), sd.tokenizer(),
                    sd.scheduler(), sd.vaeScaleFactor());
        }
    }

    /**
     * "sd14" (SD1.4/1.5, 860M UNet parameters, CLIP ViT-L/14), "sdxl" (SDXL base's UNet, 2.57 billion parameters,
     * no text encoder: null) or "tiny" (tiny-sd-a's architecture).
     */
    static BenchModel random(Backend be, String config, Path tokenizerDir, long seed) {
        return randomWithTokenizer(be, config, tokenizerDir != null ? ClipTokenizer.load(tokenizerDir) : null, seed);
    }

    /** {@link #random(Backend, String, Path, long)} with a given tokenizer (null: none). */
    static BenchModel randomWithTokenizer(Backend be, String config, ClipTokenizer tokenizer, long seed) {
        UNetConfig unet;
        ClipTextConfig text;
        int vaeScale;
        switch (config) {
            case "sd14" -> {
                unet = UNetConfig.sd14();
                text = ClipTextConfig.vitL14();
                vaeScale = 8;
            }
            case "sdxl" -> {
                unet = UNetConfig.sdxl();
                text = null;
                vaeScale = 8;
            }
            case "tiny" -> {
                unet = UNetConfig.tiny();
                text = new ClipTextConfig(49408, 32, 37, 2, 4, 77, "quick_gelu", 1e-5f);
                vaeScale = 2;
            }
            default -> throw new UserError("--config: '" + config + "' is not a known configuration (sd14, sdxl, tiny)");
        }
        Weights unetWeights = Weights.allocate(be, UNet2DConditionModel.parameterShapes(unet));
        RandomWeights.fill(be, unetWeights, seed);
        ClipTextModel textEncoder = null;
        if (text != null) {
            Weights textWeights = Weights.allocate(be, ClipTextModel.parameterShapes(text));
            RandomWeights.fill(be, textWeights, seed + 1);
            textEncoder = new ClipTextModel(be, text, textWeights);
        }
        return new BenchModel(config + " config, random weights (seed " + seed + ")", unet, unetWeights, textEncoder, tokenizer,
                DdimConfig.stableDiffusion1(), vaeScale);
    }
}
