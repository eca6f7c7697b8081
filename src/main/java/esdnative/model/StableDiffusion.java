package esdnative.model;

import esdnative.checkpoint.Layout;
import esdnative.checkpoint.ModelWeights;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;

import java.nio.file.Path;

/**
 * A loaded Stable Diffusion checkpoint: the parts ESD and sampling need, and the opened source they were read from,
 * kept open so that outputs are written in the input's layout from the same handle, untouched tensors copied from it.
 * Close the model to release the source.
 *
 * @param checkpoint      the source, opened by {@link ModelLoader#load}; null for a model built in memory (random
 *                        weights for benchmarks), which has nothing to write from
 * @param unet            the UNet's architecture
 * @param unetWeights     its parameters (diffusers names), float32
 * @param textEncoder     CLIP text encoder (frozen)
 * @param tokenizer       CLIP tokenizer
 * @param scheduler       the DDIM scheduler's configuration
 * @param vaeScaleFactor  pixels per latent cell (8 for SD; 1 for pixel-space models without a VAE)
 */
public record StableDiffusion(ModelWeights checkpoint, UNetConfig unet, Weights unetWeights,
                              ClipTextModel textEncoder, ClipTokenizer tokenizer, DdimConfig scheduler,
                              int vaeScaleFactor) implements AutoCloseable {

    /** {@link Layout#DIFFUSERS} (a folder) or {@link Layout#SINGLE_FILE} (.safetensors or .ckpt). */
    public Layout layout() { return checkpoint.layout(); }

    /** The diffusers folder or the single file. */
    public Path source() { return checkpoint.path(); }

    public UNet2DConditionModel unetModel() { return new UNet2DConditionModel(unet); }

    /** The default training/sampling resolution in pixels: the UNet's sample size times the VAE factor (512 for SD1.x). */
    public int defaultResolution() { return unet.sampleSize() * vaeScaleFactor; }

    /** Releases the source (the weights read from it stay). */
    @Override
    public void close() {
        if (checkpoint != null) checkpoint.close();
    }
}
