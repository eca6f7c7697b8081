package esdnative.checkpoint;

import esdnative.checkpoint.CompVisNames.Component;
import esdnative.util.UserError;

import java.util.Arrays;
import java.util.Collection;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * How Stable Diffusion weights are laid out on disk: the two layouts a whole model is read from and written in
 * ({@link #DIFFUSERS}, {@link #SINGLE_FILE}), the partial outputs ({@link #TRAINED_ONLY}, {@link #LORA}), and what
 * one weight file holds judged by its names ({@link #of}). The first four are the output formats, by {@link #formatId()}
 * (ESD-SPEC.md, "Outputs users expect").
 */
public enum Layout {
    /** A diffusers pipeline folder: model_index.json, unet/, text_encoder/, tokenizer/, scheduler/, vae/. */
    DIFFUSERS("diffusers", "diffusers pipeline folder"),
    /**
     * A CompVis/LDM single file (.safetensors, or a PyTorch .ckpt read safely) for AUTOMATIC1111 / ComfyUI:
     * model.diffusion_model.*, cond_stage_model.transformer.* (SD 2.x: cond_stage_model.model.*), first_stage_model.*.
     */
    SINGLE_FILE("single-file", "CompVis/LDM single file"),
    /** Only the trained UNet tensors, diffusers names, as the 2025 reference code writes them. */
    TRAINED_ONLY("trained-only", "trained UNet tensors (diffusers names)"),
    /** The trained tensors' change as a LoRA file (kohya names; esdnative.lora.LoraWriter). */
    LORA("lora", "LoRA (kohya names)"),
    /** One component file of a diffusers folder. */
    DIFFUSERS_UNET(null, "diffusers UNet (UNet2DConditionModel)"),
    DIFFUSERS_TEXT_ENCODER(null, "diffusers/transformers CLIP text encoder (CLIPTextModel)"),
    DIFFUSERS_VAE(null, "diffusers VAE (AutoencoderKL)"),
    UNKNOWN(null, "unknown layout");

    private final String formatId;
    private final String description;

    Layout(String formatId, String description) {
        this.formatId = formatId;
        this.description = description;
    }

    /** The name of this layout as an output format ("diffusers", "single-file", ...), or null if none is written so. */
    public String formatId() { return formatId; }

    public String description() { return description; }

    /** The output format named {@code text}: diffusers, single-file, trained-only or lora. */
    public static Layout outputFormat(String text) {
        String id = text.trim().toLowerCase(Locale.ROOT);
        for (Layout l : values()) if (id.equals(l.formatId)) return l;
        throw new UserError("unknown output format '" + text + "'; valid: " + Arrays.stream(values())
                .map(Layout::formatId).filter(Objects::nonNull).collect(Collectors.joining(", ")));
    }

    /** The diffusers component of a component layout, else null. */
    public Component component() {
        return switch (this) {
            case DIFFUSERS_UNET -> Component.UNET;
            case DIFFUSERS_TEXT_ENCODER -> Component.TEXT_ENCODER;
            case DIFFUSERS_VAE -> Component.VAE;
            default -> null;
        };
    }

    /** The layout of one weight file whose characteristic names appear in {@code names}. */
    public static Layout of(Collection<String> names) {
        if (names.stream().anyMatch(n -> n.startsWith(Component.UNET.compVisPrefix())
                || n.startsWith(Component.VAE.compVisPrefix()) || n.startsWith("cond_stage_model."))) {
            return SINGLE_FILE;
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
