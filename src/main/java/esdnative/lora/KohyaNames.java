package esdnative.lora;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The kohya/sd-scripts names of LoRA modules for SD1.x/2.x UNets, which AUTOMATIC1111, ComfyUI and diffusers
 * ({@code _convert_kohya_lora_to_diffusers}) read: {@code lora_unet_} + the diffusers module path with "." → "_",
 * e.g. {@code down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight} →
 * {@code lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k}. sd-scripts builds them the same way
 * from its UNet's {@code named_modules()} (networks/lora.py: {@code lora_name.replace(".", "_")}). The keys of one
 * module are {@code <name>.lora_down.weight}, {@code <name>.lora_up.weight} and {@code <name>.alpha}.
 */
public final class KohyaNames {
    private KohyaNames() {}

    public static final String UNET_PREFIX = "lora_unet_";
    public static final String DOWN = ".lora_down.weight";
    public static final String UP = ".lora_up.weight";
    public static final String ALPHA = ".alpha";

    /** The module name for a diffusers UNet weight name ("….to_k.weight"). */
    public static String module(String diffusersWeight) {
        if (!diffusersWeight.endsWith(".weight")) throw new IllegalArgumentException("not a weight: " + diffusersWeight);
        return UNET_PREFIX + diffusersWeight.substring(0, diffusersWeight.length() - ".weight".length()).replace('.', '_');
    }

    /**
     * Module name → diffusers weight name for a UNet's weights. "_" is ambiguous on the way back ("to_k" or "to.k"),
     * so the way back is a lookup among the names the model has.
     */
    public static Map<String, String> modulesOf(Collection<String> diffusersNames) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String n : diffusersNames) if (n.endsWith(".weight")) out.put(module(n), n);
        return out;
    }
}
