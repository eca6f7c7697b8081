package esdnative.model;

import esdnative.util.UserError;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeDecoder;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Architecture read off the tensor shapes of a single-file checkpoint (names already in diffusers form), as
 * diffusers' single-file loading does for SD1.x/2.x. Shapes fix the channels, levels, layers, block kinds,
 * context width and projection kind; the rest is Stable Diffusion's: 32 norm groups, heads as SD1.x (8 per
 * block) for a 768-wide context and as SD2.x (64-channel heads) for a 1024-wide one, CLIP text heads of 64
 * channels with quick_gelu. {@code assumed(...)} names those values when the shapes are no SD model's, where they
 * are guesses.
 */
final class SingleFileArchitecture {
    private static final int SD_NORM_GROUPS = 32;
    private static final int SD1_HEADS = 8;
    private static final int SD2_HEAD_CHANNELS = 64;
    private static final int CLIP_HEAD_CHANNELS = 64;
    /** SD 2.x's text encoder: OpenCLIP ViT-H/14's text tower up to its penultimate layer (23 of 24), 16 heads. */
    private static final ClipTextConfig SD2_TEXT = new ClipTextConfig(49408, 1024, 4096, 23, 16, 77, "gelu", 1e-5f);

    private SingleFileArchitecture() {}

    static UNetConfig unet(Map<String, int[]> shapes) {
        int[] convIn = shape(shapes, "conv_in.weight");
        int levels = 0;
        while (shapes.containsKey("down_blocks." + levels + ".resnets.0.conv1.weight")) levels++;
        if (levels == 0) throw new UserError("single file: no UNet down blocks found");
        int layers = 0;
        while (shapes.containsKey("down_blocks.0.resnets." + layers + ".conv1.weight")) layers++;

        List<Integer> channels = new ArrayList<>();
        List<String> down = new ArrayList<>(), up = new ArrayList<>();
        List<Integer> transformerLayers = new ArrayList<>();
        int crossDim = -1;
        boolean linearProjection = false;
        for (int i = 0; i < levels; i++) {
            channels.add(shape(shapes, "down_blocks." + i + ".resnets.0.conv1.weight")[0]);
            String attn = "down_blocks." + i + ".attentions.0.";
            boolean hasAttention = shapes.containsKey(attn + "proj_in.weight");
            down.add(hasAttention ? UNetConfig.CROSS_ATTN_DOWN : UNetConfig.DOWN);
            up.add(shapes.containsKey("up_blocks." + i + ".attentions.0.proj_in.weight") ? UNetConfig.CROSS_ATTN_UP : UNetConfig.UP);
            int blocks = 0;
            while (shapes.containsKey(attn + "transformer_blocks." + blocks + ".attn2.to_k.weight")) blocks++;
            transformerLayers.add(Math.max(blocks, 1));
            if (hasAttention) {
                crossDim = shape(shapes, attn + "transformer_blocks.0.attn2.to_k.weight")[1];
                linearProjection = shape(shapes, attn + "proj_in.weight").length == 2;
            }
        }
        if (crossDim < 0) crossDim = shape(shapes, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight")[1];
        boolean sd2 = crossDim == 1024;
        List<Integer> heads = new ArrayList<>();
        for (int c : channels) heads.add(sd2 ? Math.max(1, c / SD2_HEAD_CHANNELS) : SD1_HEADS);
        for (int c : channels) {
            if (c % SD_NORM_GROUPS != 0) {
                throw new UserError("single file: block channels " + channels + " are not multiples of SD's "
                        + SD_NORM_GROUPS + " norm groups; pass a config, a diffusers folder with the model's configs");
            }
        }
        int timeDim = shape(shapes, "time_embedding.linear_1.weight")[0];
        return new UNetConfig(convIn[1], shape(shapes, "conv_out.weight")[0], 64, channels, down, up,
                List.of(repeat(layers, levels)), List.of(repeat(crossDim, levels)), heads, transformerLayers,
                SD_NORM_GROUPS, 1e-5f, true, 0f, linearProjection, false, 1f, convIn[2],
                shape(shapes, "conv_out.weight")[2], timeDim);
    }

    /**
     * The text encoder's config from its shapes (diffusers names): CLIP ViT-L/14's quick_gelu for SD1.x's
     * {@code cond_stage_model.transformer}, OpenCLIP's gelu for SD 2.x's {@code cond_stage_model.model}
     * ({@code openClip}); 64-channel heads for both (no tensor holds the head count).
     */
    static ClipTextConfig text(Map<String, int[]> shapes, boolean openClip) {
        int[] tokens = shape(shapes, "text_model.embeddings.token_embedding.weight");
        int[] positions = shape(shapes, "text_model.embeddings.position_embedding.weight");
        int layers = 0;
        while (shapes.containsKey("text_model.encoder.layers." + layers + ".mlp.fc1.weight")) layers++;
        int hidden = tokens[1];
        int inter = shape(shapes, "text_model.encoder.layers.0.mlp.fc1.weight")[0];
        return new ClipTextConfig(tokens[0], hidden, inter, layers, Math.max(1, hidden / CLIP_HEAD_CHANNELS),
                positions[0], openClip ? "gelu" : "quick_gelu", 1e-5f);
    }

    /**
     * The VAE decoder's config from its shapes (diffusers names): channels per level read off the up blocks (which
     * run them in reverse), resnets per level (one more in each decoder block), latent and image channels; SD's 32
     * groups and 0.18215 scaling. SD's kl-f8 VAE gives {@link VaeConfig#sd()}.
     */
    static VaeConfig vae(Map<String, int[]> shapes) {
        int levels = 0;
        while (shapes.containsKey("decoder.up_blocks." + levels + ".resnets.0.conv1.weight")) levels++;
        if (levels == 0) throw new UserError("single file: no VAE decoder up blocks found");
        int resnets = 0;
        while (shapes.containsKey("decoder.up_blocks.0.resnets." + resnets + ".conv1.weight")) resnets++;
        List<Integer> channels = new ArrayList<>();
        for (int i = levels - 1; i >= 0; i--) channels.add(shape(shapes, "decoder.up_blocks." + i + ".resnets.0.conv1.weight")[0]);
        boolean attention = shapes.containsKey("decoder.mid_block.attentions.0.to_q.weight")
                || shapes.containsKey("decoder.mid_block.attentions.0.query.weight");
        return new VaeConfig(shape(shapes, "decoder.conv_in.weight")[1], shape(shapes, "decoder.conv_out.weight")[0],
                channels, resnets - 1, SD_NORM_GROUPS, VaeConfig.sd().scalingFactor(), attention);
    }

    /**
     * What {@link #unet} took from Stable Diffusion rather than from the shapes, when the shapes are no SD1.x or
     * SD2.x UNet's (conv_in's input channels aside: inpainting UNets add some); empty for SD's own shapes.
     */
    static List<String> assumed(UNetConfig c) {
        var shapes = UNet2DConditionModel.parameterShapes(c);
        for (UNetConfig sd : List.of(UNetConfig.sd14(), UNetConfig.sd2())) {
            var sdShapes = UNet2DConditionModel.parameterShapes(sd);
            if (sameShapes(shapes, sdShapes, "conv_in.weight")) return List.of();
        }
        return List.of(c.normNumGroups() + " norm groups", "attention heads " + c.attentionHeads(),
                "sample size " + c.sampleSize());
    }

    /**
     * What {@link #text} took from CLIP ViT-L/14 (SD1.x's text encoder) or SD 2.x's OpenCLIP ViT-H/14 (gelu) when the
     * shapes are not its own; else empty.
     */
    static List<String> assumed(ClipTextConfig c) {
        ClipTextConfig sd = c.hiddenAct().equals("gelu") ? SD2_TEXT : ClipTextConfig.vitL14();
        if (sameShapes(ClipTextModel.parameterShapes(c), ClipTextModel.parameterShapes(sd), null)) {
            return List.of();
        }
        return List.of("attention heads " + c.numAttentionHeads() + " (" + CLIP_HEAD_CHANNELS + " channels each)",
                "activation " + c.hiddenAct());
    }

    /** What {@link #vae} took from SD's kl-f8 VAE when the shapes are not its own; else empty. */
    static List<String> assumed(VaeConfig c) {
        if (sameShapes(VaeDecoder.parameterShapes(c), VaeDecoder.parameterShapes(VaeConfig.sd()), null)) return List.of();
        return List.of(c.normNumGroups() + " norm groups", "scaling factor " + c.scalingFactor());
    }

    /** Same names and shapes, the tensor {@code except} (may be null) aside. */
    private static boolean sameShapes(Map<String, int[]> a, Map<String, int[]> b, String except) {
        if (!a.keySet().equals(b.keySet())) return false;
        for (String name : a.keySet()) {
            if (!name.equals(except) && !Arrays.equals(a.get(name), b.get(name))) return false;
        }
        return true;
    }

    private static Integer[] repeat(int value, int n) {
        Integer[] a = new Integer[n];
        Arrays.fill(a, value);
        return a;
    }

    private static int[] shape(Map<String, int[]> shapes, String name) {
        int[] s = shapes.get(name);
        if (s == null) throw new UserError("single file: tensor for " + name + " missing");
        return s;
    }
}
