package esdnative.model.sdxl;

import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.OpenClipNames;

import java.util.List;

/**
 * Where a diffusers SDXL tensor ({@code unet/…}, {@code vae/…}, {@code text_encoder/…}, {@code text_encoder_2/…})
 * lives in the original SDXL single file (Stability-AI's {@code sgm} layout, as diffusers'
 * {@code convert_diffusers_to_original_sdxl.py} writes it; README-sdxl.md §2):
 * <ul>
 * <li>UNet and VAE: the CompVis table ({@code model.diffusion_model.*}, {@code first_stage_model.*}) for the
 *     model's topology, which maps add_embedding's two linears to {@code label_emb.0.0} / {@code label_emb.0.2};</li>
 * <li>text_encoder: {@code conditioner.embedders.0.transformer.} + the Hugging Face name;</li>
 * <li>text_encoder_2: the OpenCLIP tower under {@code conditioner.embedders.1.model.} (q/k/v fused in
 *     {@code in_proj_*}, a third each), its projection stored transposed as {@code text_projection} [hidden, proj].</li>
 * </ul>
 */
public final class SdxlSingleFileNames {
    public static final String TEXT_ENCODER_PREFIX = "conditioner.embedders.0.transformer.";
    public static final String TEXT_ENCODER_2_PREFIX = "conditioner.embedders.1.model.";
    private static final String UNET = "unet", VAE = "vae", TEXT_ENCODER = "text_encoder", TEXT_ENCODER_2 = "text_encoder_2";

    /**
     * A diffusers tensor's place: the file key, which third of dim 0 it is (q 0, k 1, v 2; -1: all of it), and
     * whether the file holds it transposed.
     */
    public record Place(String key, int third, boolean transposed) {}

    private final CompVisNames table;

    public SdxlSingleFileNames(CompVisNames.Topology topology) {
        this.table = CompVisNames.of(topology);
    }

    /** Whether a single file's keys are SDXL's (its text encoders under conditioner.embedders.*, or label_emb). */
    public static boolean isSdxl(Iterable<String> keys) {
        for (String k : keys) {
            if (k.startsWith("conditioner.embedders.") || k.startsWith("model.diffusion_model.label_emb.")) return true;
        }
        return false;
    }

    /** The place of {@code name} of diffusers component {@code component}, or null if the layout has none. */
    public Place place(String component, String name) {
        return switch (component) {
            case UNET -> whole(table.toCompVis(CompVisNames.Component.UNET, name));
            case VAE -> whole(table.toCompVis(CompVisNames.Component.VAE, name));
            case TEXT_ENCODER -> new Place(TEXT_ENCODER_PREFIX + name, -1, false);
            case TEXT_ENCODER_2 -> textEncoder2(name);
            default -> throw new IllegalArgumentException("no SDXL component " + component);
        };
    }

    /** A diffusers tensor: its component ("unet", "vae", "text_encoder", "text_encoder_2") and name. */
    public record Named(String component, String name) {}

    /**
     * The diffusers tensors a single-file key holds (three for a fused in_proj, in q, k, v order; see {@link #place}
     * for how), or none for a key no diffusers component has (logit_scale, position_ids).
     */
    public List<Named> toDiffusers(String key) {
        if (key.startsWith(TEXT_ENCODER_PREFIX)) return List.of(new Named(TEXT_ENCODER, key.substring(TEXT_ENCODER_PREFIX.length())));
        if (key.startsWith(TEXT_ENCODER_2_PREFIX)) {
            String rest = key.substring(TEXT_ENCODER_2_PREFIX.length());
            if (rest.equals("text_projection")) return List.of(new Named(TEXT_ENCODER_2, "text_projection.weight"));
            // an SDXL folder keeps every layer of the tower
            return OpenClipNames.toDiffusers(OpenClipNames.PREFIX + rest, Integer.MAX_VALUE).stream()
                    .map(n -> new Named(TEXT_ENCODER_2, n)).toList();
        }
        CompVisNames.DiffusersName d = table.toDiffusers(key);
        if (d == null || d.component() == CompVisNames.Component.TEXT_ENCODER) return List.of();
        return List.of(new Named(d.component().folder(), d.name()));
    }

    private static Place textEncoder2(String name) {
        if (name.equals("text_projection.weight")) return new Place(TEXT_ENCODER_2_PREFIX + "text_projection", -1, true);
        OpenClipNames.Part part = OpenClipNames.toCompVis(name);
        if (part == null) return null;
        String key = TEXT_ENCODER_2_PREFIX + part.compVisName().substring(OpenClipNames.PREFIX.length());
        return new Place(key, part.third(), false);
    }

    private static Place whole(String key) {
        return key == null ? null : new Place(key, -1, false);
    }
}
