package esdnative.model.unet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import esdnative.util.UserError;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The architecture of a diffusers UNet2DConditionModel (its {@code unet/config.json}), reduced to what the
 * SD1.x / SD2.x / SDXL family uses. Per-block settings are lists with one entry per down block (diffusers accepts an int
 * for all blocks; {@link #fromJson} expands it).
 *
 * <p>{@code attentionHeads} is the number of attention heads per down block. As in diffusers 0.21, a config
 * without {@code num_attention_heads} takes it from {@code attention_head_dim} (a naming bug diffusers kept for
 * compatibility: SD1.x's "8" is 8 heads of 40/80/160 channels, SD2.x's [5, 10, 20, 20] heads of 64).
 */
public record UNetConfig(
        int inChannels,
        int outChannels,
        int sampleSize,
        List<Integer> blockOutChannels,
        List<String> downBlockTypes,
        List<String> upBlockTypes,
        List<Integer> layersPerBlock,
        List<Integer> crossAttentionDim,
        List<Integer> attentionHeads,
        List<Integer> transformerLayersPerBlock,
        int normNumGroups,
        float normEps,
        boolean flipSinToCos,
        float freqShift,
        boolean useLinearProjection,
        boolean upcastAttention,
        float midBlockScaleFactor,
        int convInKernel,
        int convOutKernel,
        int timeEmbeddingDim,
        TextTime textTime) {

    /**
     * SDXL's added conditioning (diffusers' addition_embed_type "text_time"): the pooled text embedding and the
     * sinusoids of the six micro-conditioning ids (original size, crop, target size), each {@code timeEmbedDim}
     * wide, enter add_embedding (Linear {@code inputDim} → time embedding width, SiLU, Linear), which is added
     * to the time embedding.
     *
     * @param timeEmbedDim addition_time_embed_dim
     * @param inputDim     projection_class_embeddings_input_dim = pooled width + 6 · timeEmbedDim
     */
    public record TextTime(int timeEmbedDim, int inputDim) {
        /** Number of micro-conditioning ids per sample. */
        public static final int TIME_IDS = 6;

        /** Width of the pooled text embedding the model expects. */
        public int textEmbedDim() { return inputDim - TIME_IDS * timeEmbedDim; }
    }

    /** A UNet without added conditioning (SD 1.x / 2.x). */
    public UNetConfig(int inChannels, int outChannels, int sampleSize, List<Integer> blockOutChannels,
                      List<String> downBlockTypes, List<String> upBlockTypes, List<Integer> layersPerBlock,
                      List<Integer> crossAttentionDim, List<Integer> attentionHeads,
                      List<Integer> transformerLayersPerBlock, int normNumGroups, float normEps, boolean flipSinToCos,
                      float freqShift, boolean useLinearProjection, boolean upcastAttention, float midBlockScaleFactor,
                      int convInKernel, int convOutKernel, int timeEmbeddingDim) {
        this(inChannels, outChannels, sampleSize, blockOutChannels, downBlockTypes, upBlockTypes, layersPerBlock,
                crossAttentionDim, attentionHeads, transformerLayersPerBlock, normNumGroups, normEps, flipSinToCos,
                freqShift, useLinearProjection, upcastAttention, midBlockScaleFactor, convInKernel, convOutKernel,
                timeEmbeddingDim, null);
    }

    public static final String CROSS_ATTN_DOWN = "CrossAttnDownBlock2D";
    public static final String DOWN = "DownBlock2D";
    public static final String CROSS_ATTN_UP = "CrossAttnUpBlock2D";
    public static final String UP = "UpBlock2D";
    public static final String MID = "UNetMidBlock2DCrossAttn";

    public UNetConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
        downBlockTypes = List.copyOf(downBlockTypes);
        upBlockTypes = List.copyOf(upBlockTypes);
        layersPerBlock = List.copyOf(layersPerBlock);
        crossAttentionDim = List.copyOf(crossAttentionDim);
        attentionHeads = List.copyOf(attentionHeads);
        transformerLayersPerBlock = List.copyOf(transformerLayersPerBlock);
        if (textTime != null && (textTime.timeEmbedDim() < 1 || textTime.textEmbedDim() < 1)) {
            throw new IllegalArgumentException("text_time embedding needs positive widths: " + textTime);
        }
        int levels = blockOutChannels.size();
        for (List<?> perBlock : List.of(downBlockTypes, upBlockTypes, layersPerBlock, crossAttentionDim,
                attentionHeads, transformerLayersPerBlock)) {
            if (perBlock.size() != levels) {
                throw new IllegalArgumentException("per-block settings must have " + levels + " entries: " + perBlock);
            }
        }
    }

    /** Number of resolution levels (down blocks). */
    public int levels() { return blockOutChannels.size(); }

    /** Latent height/width must be a multiple of this (one halving per down block but the last). */
    public int spatialMultiple() { return 1 << (levels() - 1); }

    /** CompVis/diffusers Stable Diffusion 1.4 / 1.5 (859,520,964 parameters). */
    public static UNetConfig sd14() {
        return new UNetConfig(4, 4, 64, List.of(320, 640, 1280, 1280),
                List.of(CROSS_ATTN_DOWN, CROSS_ATTN_DOWN, CROSS_ATTN_DOWN, DOWN),
                List.of(UP, CROSS_ATTN_UP, CROSS_ATTN_UP, CROSS_ATTN_UP),
                List.of(2, 2, 2, 2), List.of(768, 768, 768, 768), List.of(8, 8, 8, 8), List.of(1, 1, 1, 1),
                32, 1e-5f, true, 0f, false, false, 1f, 3, 3, 1280);
    }

    /**
     * The UNet of the reference fixtures' tiny-sd-a (diffusers' test pipeline's): 2 levels of 32/64 channels, 2 layers
     * per block, cross-attention (8 heads, context 32) at the first level, 8 norm groups; 1.1 M parameters.
     */
    public static UNetConfig tiny() {
        return new UNetConfig(4, 4, 16, List.of(32, 64), List.of(CROSS_ATTN_DOWN, DOWN), List.of(UP, CROSS_ATTN_UP),
                List.of(2, 2), List.of(32, 32), List.of(8, 8), List.of(1, 1), 8, 1e-5f, true, 0f, false, false, 1f, 3, 3, 128);
    }

    /**
     * Stable Diffusion 2.x (768-v, as stabilityai/stable-diffusion-2-1 ships it): OpenCLIP-H context of 1024,
     * linear projections in the transformers, 64-channel heads, upcast attention.
     */
    public static UNetConfig sd2() {
        return new UNetConfig(4, 4, 96, List.of(320, 640, 1280, 1280),
                List.of(CROSS_ATTN_DOWN, CROSS_ATTN_DOWN, CROSS_ATTN_DOWN, DOWN),
                List.of(UP, CROSS_ATTN_UP, CROSS_ATTN_UP, CROSS_ATTN_UP),
                List.of(2, 2, 2, 2), List.of(1024, 1024, 1024, 1024), List.of(5, 10, 20, 20), List.of(1, 1, 1, 1),
                32, 1e-5f, true, 0f, true, true, 1f, 3, 3, 1280);
    }

    /**
     * Stable Diffusion XL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0): 3 levels, 1/2/10 transformer blocks
     * per attention, 64-channel heads, context 2048 (768 + 1280), the text_time added conditioning of 1280 + 6 · 256.
     */
    public static UNetConfig sdxl() {
        return new UNetConfig(4, 4, 128, List.of(320, 640, 1280),
                List.of(DOWN, CROSS_ATTN_DOWN, CROSS_ATTN_DOWN), List.of(CROSS_ATTN_UP, CROSS_ATTN_UP, UP),
                List.of(2, 2, 2), List.of(2048, 2048, 2048), List.of(5, 10, 20), List.of(1, 2, 10),
                32, 1e-5f, true, 0f, true, false, 1f, 3, 3, 1280, new TextTime(256, 2816));
    }

    /** Reads a diffusers {@code unet/config.json}; anything this engine does not implement is a {@link UserError}. */
    public static UNetConfig fromJson(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new UserError("cannot read UNet config " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new UserError("UNet config " + file + ": not a JSON object");
        return new Reader(file, root).read();
    }

    /** Parses one config.json, naming the file and the key in every complaint. */
    private record Reader(Path file, JsonNode root) {

        UNetConfig read() {
            String cls = root.path("_class_name").asText("UNet2DConditionModel");
            if (!cls.equals("UNet2DConditionModel")) fail("_class_name", cls + " is not a UNet2DConditionModel");
            rejectUnsupported();

            List<Integer> blocks = intList("block_out_channels", null);
            int levels = blocks.size();
            if (levels == 0) fail("block_out_channels", "is empty");
            List<String> down = stringList("down_block_types", levels);
            List<String> up = stringList("up_block_types", levels);
            for (String t : down) if (!t.equals(CROSS_ATTN_DOWN) && !t.equals(DOWN)) fail("down_block_types", t + " is not supported");
            for (String t : up) if (!t.equals(CROSS_ATTN_UP) && !t.equals(UP)) fail("up_block_types", t + " is not supported");
            String mid = root.path("mid_block_type").asText(MID);
            if (!mid.equals(MID)) fail("mid_block_type", mid + " is not supported");

            List<Integer> heads = root.hasNonNull("num_attention_heads")
                    ? intOrList("num_attention_heads", levels, 0)
                    : intOrList("attention_head_dim", levels, 8);
            int groups = intValue("norm_num_groups", 32);
            for (int c : blocks) {
                if (c % groups != 0) fail("norm_num_groups", groups + " does not divide block channels " + c);
            }
            for (int i = 0; i < levels; i++) {
                if (heads.get(i) <= 0) fail("attention_head_dim", "head counts must be positive: " + heads);
            }
            int convIn = intValue("conv_in_kernel", 3);
            int convOut = intValue("conv_out_kernel", 3);
            if (convIn % 2 == 0 || convOut % 2 == 0) fail("conv_in_kernel/conv_out_kernel", "kernels must be odd");
            int timeDim = root.hasNonNull("time_embedding_dim") ? intValue("time_embedding_dim", 0) : 4 * blocks.get(0);

            return new UNetConfig(
                    intValue("in_channels", 4), intValue("out_channels", 4), intValue("sample_size", 64),
                    blocks, down, up,
                    intOrList("layers_per_block", levels, 2),
                    intOrList("cross_attention_dim", levels, 1280),
                    heads,
                    intOrList("transformer_layers_per_block", levels, 1),
                    groups,
                    (float) root.path("norm_eps").asDouble(1e-5),
                    root.path("flip_sin_to_cos").asBoolean(true),
                    (float) root.path("freq_shift").asDouble(0),
                    root.path("use_linear_projection").asBoolean(false),
                    root.path("upcast_attention").asBoolean(false),
                    (float) root.path("mid_block_scale_factor").asDouble(1),
                    convIn, convOut, timeDim, textTime());
        }

        /** addition_embed_type: null, or "text_time" with its two widths. */
        private TextTime textTime() {
            JsonNode type = root.get("addition_embed_type");
            if (type == null || type.isNull()) {
                for (String key : List.of("addition_time_embed_dim", "projection_class_embeddings_input_dim")) {
                    if (root.hasNonNull(key)) fail(key, "is only supported with addition_embed_type \"text_time\"");
                }
                return null;
            }
            if (!type.asText().equals("text_time")) fail("addition_embed_type", type + " is not supported (only \"text_time\")");
            int timeDim = intValue("addition_time_embed_dim", 0);
            int inputDim = intValue("projection_class_embeddings_input_dim", 0);
            if (timeDim < 1 || inputDim <= TextTime.TIME_IDS * timeDim) {
                fail("projection_class_embeddings_input_dim", inputDim + " must exceed 6 × addition_time_embed_dim "
                        + timeDim + " (the pooled text embedding comes first)");
            }
            return new TextTime(timeDim, inputDim);
        }

        /** Features of the general diffusers UNet that SD1.x/SD2.x never use: refuse rather than ignore. */
        private void rejectUnsupported() {
            for (String key : List.of("class_embed_type", "encoder_hid_dim", "encoder_hid_dim_type",
                    "time_cond_proj_dim", "num_class_embeds", "time_embedding_act_fn", "timestep_post_act",
                    "cross_attention_norm")) {
                if (root.hasNonNull(key)) fail(key, root.get(key) + " is not supported (only null)");
            }
            requireText("act_fn", "silu");
            requireText("time_embedding_type", "positional");
            requireText("resnet_time_scale_shift", "default");
            requireText("attention_type", "default");
            for (String key : List.of("center_input_sample", "dual_cross_attention", "resnet_skip_time_act",
                    "class_embeddings_concat", "mid_block_only_cross_attention")) {
                if (root.path(key).asBoolean(false)) fail(key, "true is not supported");
            }
            JsonNode only = root.path("only_cross_attention");
            if (only.isBoolean() && only.asBoolean() || only.isArray() && only.toString().contains("true")) {
                fail("only_cross_attention", "true is not supported");
            }
            if (root.path("dropout").asDouble(0) != 0) fail("dropout", "only 0 is supported");
            if (root.path("resnet_out_scale_factor").asDouble(1) != 1) fail("resnet_out_scale_factor", "only 1.0 is supported");
            if (root.path("downsample_padding").asInt(1) != 1) fail("downsample_padding", "only 1 is supported");
        }

        private void requireText(String key, String expected) {
            String got = root.path(key).asText(expected);
            if (!got.equals(expected)) fail(key, "\"" + got + "\" is not supported (only \"" + expected + "\")");
        }

        private int intValue(String key, int dflt) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) return dflt;
            if (!n.canConvertToInt()) fail(key, n + " is not an integer");
            return n.asInt();
        }

        private List<Integer> intList(String key, Integer expectedSize) {
            JsonNode n = root.get(key);
            if (n == null || !n.isArray()) fail(key, "must be a list of integers");
            List<Integer> out = new ArrayList<>();
            for (JsonNode e : n) {
                if (!e.canConvertToInt()) fail(key, n + " is not a list of integers");
                out.add(e.asInt());
            }
            if (expectedSize != null && out.size() != expectedSize) fail(key, "needs " + expectedSize + " entries, has " + out.size());
            return out;
        }

        /** diffusers' "int or per-block tuple" settings. */
        private List<Integer> intOrList(String key, int levels, int dflt) {
            JsonNode n = root.get(key);
            if (n == null || n.isNull()) return Collections.nCopies(levels, dflt);
            if (n.isArray()) return intList(key, levels);
            return Collections.nCopies(levels, intValue(key, dflt));
        }

        private List<String> stringList(String key, int expectedSize) {
            JsonNode n = root.get(key);
            if (n == null || !n.isArray()) fail(key, "must be a list of block type names");
            List<String> out = new ArrayList<>();
            for (JsonNode e : n) out.add(e.asText());
            if (out.size() != expectedSize) fail(key, "needs " + expectedSize + " entries, has " + out.size());
            return out;
        }

        private void fail(String key, String what) {
            throw new UserError("UNet config " + file + ": " + key + " " + what);
        }
    }
}
