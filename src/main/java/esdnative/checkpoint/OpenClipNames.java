package esdnative.checkpoint;

import java.util.Collection;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * SD 2.x's text encoder in a CompVis single file: Stability-AI's OpenCLIP tower under {@code cond_stage_model.model.}
 * ↔ the diffusers {@code CLIPTextModel} names ({@code text_model.*}).
 *
 * <p>OpenCLIP fuses the attention input projection: {@code transformer.resblocks.N.attn.in_proj_weight} [3W, W] (and
 * {@code in_proj_bias} [3W]) holds q, k and v as thirds of dim 0, which diffusers keeps as three tensors. SD 2.x
 * conditions on the penultimate resblock's output (then {@code ln_final}): a checkpoint of the full tower (it has
 * {@code text_projection}) holds one resblock more than the diffusers encoder, which a reader drops along with
 * {@code text_projection} and {@code logit_scale}; a file written from a diffusers folder (by diffusers' conversion
 * script, or by us) holds exactly the encoder's layers and no projection. README-clip-sd2.md has the table.
 */
public final class OpenClipNames {
    private OpenClipNames() {}

    /** The key prefix of the OpenCLIP text tower in an SD 2.x single file. */
    public static final String PREFIX = "cond_stage_model.model.";

    /** One diffusers tensor's place in the file: its name there and which third of dim 0 (q 0, k 1, v 2; -1 all). */
    public record Part(String compVisName, int third) {}

    private static final String TEXT = "text_model.";
    /** diffusers (after "text_model."), OpenCLIP (after the prefix): tensors outside the resblocks */
    private static final List<String[]> FIXED = List.of(
            new String[] {"embeddings.token_embedding.weight", "token_embedding.weight"},
            new String[] {"embeddings.position_embedding.weight", "positional_embedding"},
            new String[] {"final_layer_norm.weight", "ln_final.weight"},
            new String[] {"final_layer_norm.bias", "ln_final.bias"});
    /** diffusers (after "encoder.layers.N."), OpenCLIP (after "transformer.resblocks.N."): renamed parts of a layer */
    private static final List<String[]> LAYER = List.of(
            new String[] {"layer_norm1.", "ln_1."}, new String[] {"layer_norm2.", "ln_2."},
            new String[] {"self_attn.out_proj.", "attn.out_proj."},
            new String[] {"mlp.fc1.", "mlp.c_fc."}, new String[] {"mlp.fc2.", "mlp.c_proj."});
    private static final List<String> QKV = List.of("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.");
    private static final Pattern DIFFUSERS_LAYER = Pattern.compile("^text_model\\.encoder\\.layers\\.(\\d+)\\.(.*)$");
    private static final Pattern OPENCLIP_BLOCK = Pattern.compile("^" + Pattern.quote(PREFIX) + "transformer\\.resblocks\\.(\\d+)\\.(.*)$");

    /** True if a single file's text encoder is an OpenCLIP tower (SD 2.x). */
    public static boolean isOpenClip(Collection<String> fileNames) {
        return fileNames.stream().anyMatch(n -> n.startsWith(PREFIX));
    }

    /**
     * The diffusers encoder's layer count: all resblocks but the last when the file holds the full tower (with
     * {@code text_projection}, as every SD 2.x release), else all of them (written from a diffusers folder).
     */
    public static int diffusersLayers(Collection<String> fileNames) {
        int blocks = 0;
        for (String n : fileNames) {
            Matcher m = OPENCLIP_BLOCK.matcher(n);
            if (m.matches()) blocks = Math.max(blocks, Integer.parseInt(m.group(1)) + 1);
        }
        return fileNames.contains(PREFIX + "text_projection") ? Math.max(0, blocks - 1) : blocks;
    }

    /** The file's place of a diffusers text encoder tensor, or null if the tower has none (position_ids). */
    public static Part toCompVis(String diffusersName) {
        for (String[] f : FIXED) if (diffusersName.equals(TEXT + f[0])) return new Part(PREFIX + f[1], -1);
        Matcher m = DIFFUSERS_LAYER.matcher(diffusersName);
        if (!m.matches()) return null;
        String block = PREFIX + "transformer.resblocks." + m.group(1) + ".";
        String rest = m.group(2);
        for (String[] p : LAYER) if (rest.startsWith(p[0])) return new Part(block + p[1] + rest.substring(p[0].length()), -1);
        for (int i = 0; i < QKV.size(); i++) {
            if (rest.equals(QKV.get(i) + "weight")) return new Part(block + "attn.in_proj_weight", i);
            if (rest.equals(QKV.get(i) + "bias")) return new Part(block + "attn.in_proj_bias", i);
        }
        return null;
    }

    /**
     * The diffusers names a file tensor holds (three for a fused in_proj, in q, k, v order), for an encoder of
     * {@code layers} layers; empty for tensors SD does not use (the last resblock of a full tower, text_projection,
     * logit_scale, attn_mask) or that are not the text tower's.
     */
    public static List<String> toDiffusers(String compVisName, int layers) {
        if (!compVisName.startsWith(PREFIX)) return List.of();
        for (String[] f : FIXED) if (compVisName.equals(PREFIX + f[1])) return List.of(TEXT + f[0]);
        Matcher m = OPENCLIP_BLOCK.matcher(compVisName);
        if (!m.matches() || Integer.parseInt(m.group(1)) >= layers) return List.of();
        String layer = TEXT + "encoder.layers." + m.group(1) + ".";
        String rest = m.group(2);
        for (String[] p : LAYER) if (rest.startsWith(p[1])) return List.of(layer + p[0] + rest.substring(p[1].length()));
        String suffix = rest.equals("attn.in_proj_weight") ? "weight" : rest.equals("attn.in_proj_bias") ? "bias" : null;
        if (suffix == null) return List.of();
        return QKV.stream().map(q -> layer + q + suffix).toList();
    }
}
