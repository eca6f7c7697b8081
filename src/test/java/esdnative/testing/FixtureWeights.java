package esdnative.testing;

import esdnative.backend.Backend;
import esdnative.checkpoint.ModelWeights;
import esdnative.model.ModelLoader;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNetConfig;
import esdnative.model.vae.VaeConfig;

import java.nio.file.Path;

/** One part of a fixture model, read by the loader's own road (the model opened as {@link ModelWeights}). */
public final class FixtureWeights {
    private FixtureWeights() {}

    /** The UNet of {@code model} (a fixture folder or single file) with {@code config}'s parameters. */
    public static Weights unet(Backend be, UNetConfig config, Path model) {
        try (ModelWeights w = ModelWeights.open(model, ModelWeights.Ema.OFF)) {
            return ModelLoader.unetWeights(be, config, w);
        }
    }

    /** The VAE decoder of {@code model}. */
    public static Weights vae(Backend be, VaeConfig config, Path model) {
        try (ModelWeights w = ModelWeights.open(model, ModelWeights.Ema.OFF)) {
            return ModelLoader.vaeWeights(be, config, w);
        }
    }

    /** The CLIP text encoder of {@code model}. */
    public static ClipTextModel textEncoder(Backend be, ClipTextConfig config, Path model) {
        try (ModelWeights w = ModelWeights.open(model, ModelWeights.Ema.OFF)) {
            return ModelLoader.textEncoder(be, config, w);
        }
    }
}
