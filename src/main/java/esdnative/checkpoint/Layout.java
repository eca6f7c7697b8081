package esdnative.checkpoint;

import esdnative.checkpoint.CompVisNames.Component;

import java.util.Collection;

/** Which kind of Stable Diffusion weight file a set of tensor names is, judged by the names alone. */
public enum Layout {
    DIFFUSERS_UNET("diffusers UNet (UNet2DConditionModel)"),
    DIFFUSERS_TEXT_ENCODER("diffusers/transformers CLIP text encoder (CLIPTextModel)"),
    DIFFUSERS_VAE("diffusers VAE (AutoencoderKL)"),
    COMPVIS_SINGLE_FILE("CompVis/LDM single file"),
    UNKNOWN("unknown layout");

    private final String description;

    Layout(String description) { this.description = description; }

    public String description() { return description; }

    /** The diffusers component of a component layout, else null. */
    public Component component() {
        return switch (this) {
            case DIFFUSERS_UNET -> Component.UNET;
            case DIFFUSERS_TEXT_ENCODER -> Component.TEXT_ENCODER;
            case DIFFUSERS_VAE -> Component.VAE;
            default -> null;
        };
    }

    /** The layout whose characteristic names appear in {@code names}. */
    public static Layout of(Collection<String> names) {
        if (names.stream().anyMatch(n -> n.startsWith(Component.UNET.compVisPrefix())
                || n.startsWith(Component.VAE.compVisPrefix()) || n.startsWith("cond_stage_model."))) {
            return COMPVIS_SINGLE_FILE;
        }
        if (names.contains("conv_in.weight") && names.stream().anyMatch(n -> n.startsWith("time_embedding."))) {
            return DIFFUSERS_UNET;
        }
        if (names.stream().anyMatch(n -> n.startsWith("text_model.encoder.layers."))) return DIFFUSERS_TEXT_ENCODER;
        if (names.stream().anyMatch(n -> n.startsWith("decoder.conv_in.") || n.startsWith("encoder.conv_in."))) {
            return DIFFUSERS_VAE;
        }
        return UNKNOWN;
    }
}
