package esdnative.model;

import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;
import esdnative.checkpoint.ModelWeights;

import java.nio.file.Path;

/**
 * A loaded Stable Diffusion checkpoint: the parts ESD and sampling need, and where they came from (so that
 * outputs can be written in the input's layout, with untouched tensors copied from the source).
 *
 * @param layout          the source's layout
 * @param source          the diffusers folder or the single file
 * @param unet            the UNet's architecture
 * @param unetWeights     its parameters (diffusers names), float32
 * @param textEncoder     CLIP text encoder (frozen)
 * @param tokenizer       CLIP tokenizer
 * @param scheduler       the DDIM scheduler's configuration
 * @param vaeScaleFactor  pixels per latent cell (8 for SD; 1 for pixel-space models without a VAE)
 * @param unetEma         which UNet weights of a checkpoint were loaded: its raw ones, or its model_ema.* copy
 */
public record StableDiffusion(Layout layout, Path source, UNetConfig unet, Weights unetWeights,
                              ClipTextModel textEncoder, ClipTokenizer tokenizer, DdimConfig scheduler,
                              int vaeScaleFactor, ModelWeights.Ema unetEma) {

    /** A model whose UNet weights are the source's raw ones. */
    public StableDiffusion(Layout layout, Path source, UNetConfig unet, Weights unetWeights, ClipTextModel textEncoder,
                           ClipTokenizer tokenizer, DdimConfig scheduler, int vaeScaleFactor) {
        this(layout, source, unet, unetWeights, textEncoder, tokenizer, scheduler, vaeScaleFactor, ModelWeights.Ema.OFF);
    }

    public enum Layout {
        /** A diffusers pipeline folder: model_index.json, unet/, text_encoder/, tokenizer/, scheduler/, vae/. */
        DIFFUSERS,
        /**
         * A CompVis/LDM single file: model.diffusion_model.*, cond_stage_model.transformer.* (SD 2.x:
         * cond_stage_model.model.*), first_stage_model.*.
         */
        SINGLE_FILE
    }

    public UNet2DConditionModel unetModel() { return new UNet2DConditionModel(unet); }

    /** The default training/sampling resolution in pixels: the UNet's sample size times the VAE factor (512 for SD1.x). */
    public int defaultResolution() { return unet.sampleSize() * vaeScaleFactor; }
}
