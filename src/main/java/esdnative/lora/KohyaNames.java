package esdnative.lora;

import esdnative.model.sdxl.SdxlSingleFileNames;
import esdnative.checkpoint.CompVisNames;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The kohya/sd-scripts names of LoRA modules, which AUTOMATIC1111, ComfyUI and diffusers read: {@code lora_unet_} +
 * a module path with "." → "_" (sd-scripts' networks/lora.py: {@code lora_name.replace(".", "_")} over its UNet's
 * {@code named_modules()}). The keys of one module are {@code <name>.lora_down.weight}, {@code <name>.lora_up.weight}
 * and {@code <name>.alpha}. Which module path depends on the UNet sd-scripts trains:
 * <ul>
 * <li>SD 1.x/2.x ({@link #DIFFUSERS}): the diffusers path, e.g. {@code down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k}
 *     → {@code lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k};</li>
 * <li>SDXL ({@link #sdxl}): sd-scripts' SDXL UNet has the original (Stability-AI sgm) module layout, so the path is the
 *     weight's key in the original single file without {@code model.diffusion_model.}, e.g. diffusers
 *     {@code down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k} → {@code input_blocks.4.1.transformer_blocks.0.attn2.to_k}
 *     → {@code lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k}. ComfyUI builds these names from the
 *     model's own {@code diffusion_model.*} keys, and diffusers maps them back to its blocks in
 *     {@code _maybe_map_sgm_blocks_to_diffusers} (0.21.4: when loaded through an SDXL pipeline, which passes its UNet's
 *     config).</li>
 * </ul>
 */
public final class KohyaNames {
    public static final String UNET_PREFIX = "lora_unet_";
    public static final String DOWN = ".lora_down.weight";
    public static final String UP = ".lora_up.weight";
    public static final String ALPHA = ".alpha";

    /** SD 1.x/2.x: module names from the diffusers UNet paths. */
    public static final KohyaNames DIFFUSERS = new KohyaNames(path -> path);

    /** diffusers weight name without ".weight" → the module path in this convention's UNet layout. */
    private final UnaryOperator<String> modulePath;

    private KohyaNames(UnaryOperator<String> modulePath) {
        this.modulePath = modulePath;
    }

    /**
     * SDXL: module names from the original single file's UNet keys, for the UNet whose diffusers weight names are
     * {@code unetNames} (its levels, layers per block and attention levels fix the block numbers).
     */
    public static KohyaNames sdxl(Collection<String> unetNames) {
        var names = new SdxlSingleFileNames(CompVisNames.Topology.fromDiffusers(unetNames, List.of()));
        String prefix = CompVisNames.Component.UNET.compVisPrefix();
        return new KohyaNames(path -> {
            SdxlSingleFileNames.Place place = names.place("unet", path + ".weight");
            if (place == null) throw new IllegalArgumentException("no original SDXL name for UNet weight " + path + ".weight");
            String key = place.key();
            return key.substring(prefix.length(), key.length() - ".weight".length());
        });
    }

    /**
     * The convention for a UNet with these diffusers weight names: SDXL's for a UNet with SDXL's text_time added
     * conditioning ({@code add_embedding.*}), else the diffusers paths.
     */
    public static KohyaNames forUnet(Collection<String> unetNames) {
        return unetNames.contains("add_embedding.linear_1.weight") ? sdxl(unetNames) : DIFFUSERS;
    }

    /** The module name for a diffusers UNet weight name ("….to_k.weight"). */
    public String module(String diffusersWeight) {
        if (!diffusersWeight.endsWith(".weight")) throw new IllegalArgumentException("not a weight: " + diffusersWeight);
        String path = diffusersWeight.substring(0, diffusersWeight.length() - ".weight".length());
        return UNET_PREFIX + modulePath.apply(path).replace('.', '_');
    }

    /**
     * Module name → diffusers weight name for a UNet's weights. "_" is ambiguous on the way back ("to_k" or "to.k"),
     * so the way back is a lookup among the names the model has.
     */
    public Map<String, String> modulesOf(Collection<String> diffusersNames) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String n : diffusersNames) if (n.endsWith(".weight")) out.put(module(n), n);
        return out;
    }
}
