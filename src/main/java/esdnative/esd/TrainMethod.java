package esdnative.esd;

import esdnative.util.UserError;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Which UNet parameters ESD fine-tunes. The rules are the paper code's (train-esd.py), applied to CompVis/LDM UNet
 * names with "model.diffusion_model." stripped — translate diffusers names first, so that a substring rule such as
 * "time_embed" does not catch diffusers' "time_emb_proj". {@code esd-u} keeps the paper's meaning ({@code noxattn});
 * the authors' 2025 rewrite ({@code esd_sd.py}) named other sets, here {@code esd-u-2025} and {@code esd-all-2025}.
 */
public enum TrainMethod {
    /** ESD-u: everything but the output layers, cross-attention and the time embedding. */
    NOXATTN("noxattn", "esd-u") {
        @Override public boolean trains(String n) {
            return !(n.startsWith("out.") || n.contains("attn2") || n.contains("time_embed"));
        }
    },
    /** ESD-x: the cross-attention layers. */
    XATTN("xattn", "esd-x") {
        @Override public boolean trains(String n) { return n.contains("attn2"); }
    },
    /** The 2025 code's esd-x-strict: only the cross-attention keys and values. */
    XATTN_STRICT("xattn-strict", "esd-x-strict") {
        @Override public boolean trains(String n) { return n.contains("attn2.to_k") || n.contains("attn2.to_v"); }
    },
    SELFATTN("selfattn", null) {
        @Override public boolean trains(String n) { return n.contains("attn1"); }
    },
    FULL("full", null) {
        @Override public boolean trains(String n) { return true; }
    },
    NOTIME("notime", null) {
        @Override public boolean trains(String n) { return !(n.startsWith("out.") || n.contains("time_embed")); }
    },
    XLAYER("xlayer", null) {
        @Override public boolean trains(String n) {
            return n.contains("attn2") && (n.contains("output_blocks.6.") || n.contains("output_blocks.8."));
        }
    },
    SELFLAYER("selflayer", null) {
        @Override public boolean trains(String n) {
            return n.contains("attn1") && (n.contains("input_blocks.4.") || n.contains("input_blocks.7."));
        }
    },
    /**
     * The 2025 code's esd-u: every Linear and Conv2d module whose name lacks "attn2". Unlike ESD-u it trains conv_out
     * and the time embedding, and leaves the norms.
     */
    ESD_U_2025("esd-u-2025", null) {
        @Override public boolean trains(String n) { return !n.contains("attn2") && !isNorm(n); }
    },
    /** The 2025 code's esd-all: every Linear and Conv2d module, i.e. everything but the norms. */
    ESD_ALL_2025("esd-all-2025", null) {
        @Override public boolean trains(String n) { return !isNorm(n); }
    };

    /**
     * Whether a CompVis UNet parameter belongs to a GroupNorm or LayerNorm module: a resnet's in_layers.0 and
     * out_layers.0, a transformer's norm, its blocks' norm1–3, the output's out.0. Every other UNet module with
     * parameters is a Linear or a Conv2d.
     */
    private static boolean isNorm(String n) {
        String module = n.substring(0, n.lastIndexOf('.'));
        return module.equals("out.0") || module.endsWith(".in_layers.0") || module.endsWith(".out_layers.0")
                || module.matches(".*\\.norm[123]?");
    }

    private final String id;
    private final String paperName;

    TrainMethod(String id, String paperName) {
        this.id = id;
        this.paperName = paperName;
    }

    /** Whether the parameter with this CompVis UNet name (without "model.diffusion_model.") is trained. */
    public abstract boolean trains(String compVisUnetName);

    public String id() { return id; }

    /** Parses a method id or its paper alias (esd-u, esd-x, esd-x-strict), case-insensitively. */
    public static TrainMethod parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        for (TrainMethod m : values()) {
            if (m.id.equals(t) || t.equals(m.paperName)) return m;
        }
        throw new UserError("unknown train method '" + text + "'; valid: " + validNames());
    }

    static String validNames() {
        return Arrays.stream(values())
                .map(m -> m.paperName == null ? m.id : m.id + " (" + m.paperName + ")")
                .collect(Collectors.joining(", "));
    }
}
