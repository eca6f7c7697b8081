package esdnative.esd;

import esdnative.util.UserError;

import java.util.Locale;

/** How ESD's result is written (ESD-SPEC.md, "Outputs users expect"). */
public enum OutputFormat {
    /** A diffusers pipeline folder with the UNet replaced (or just unet/ when the input was a single file). */
    DIFFUSERS("diffusers"),
    /** A CompVis single file for AUTOMATIC1111 / ComfyUI, text encoder and VAE included. */
    SINGLE_FILE("single-file"),
    /** Only the trained tensors, diffusers keys, as the 2025 reference code writes them. */
    TRAINED_ONLY("trained-only"),
    /** The trained tensors' change as a LoRA file (kohya keys; esdnative.lora.LoraWriter), for A1111 / ComfyUI / diffusers. */
    LORA("lora");

    private final String id;

    OutputFormat(String id) { this.id = id; }

    public String id() { return id; }

    public static OutputFormat parse(String text) {
        for (OutputFormat f : values()) if (f.id.equals(text.trim().toLowerCase(Locale.ROOT))) return f;
        throw new UserError("--format: unknown format '" + text + "'; valid: diffusers, single-file, trained-only, lora");
    }
}
