package esdnative.esd;

import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.io.Json;
import esdnative.model.unet.UNetConfig;

/** A diffusers {@code unet/config.json} for a UNet whose source (a single file) had none. */
public final class DiffusersUNetConfig {
    private DiffusersUNetConfig() {}

    public static String json(UNetConfig c) {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "UNet2DConditionModel");
        j.put("_diffusers_version", "0.21.4");
        j.put("in_channels", c.inChannels());
        j.put("out_channels", c.outChannels());
        j.put("sample_size", c.sampleSize());
        c.blockOutChannels().forEach(j.putArray("block_out_channels")::add);
        c.downBlockTypes().forEach(j.putArray("down_block_types")::add);
        c.upBlockTypes().forEach(j.putArray("up_block_types")::add);
        j.put("mid_block_type", UNetConfig.MID);
        j.put("layers_per_block", c.layersPerBlock().getFirst());
        j.put("cross_attention_dim", c.crossAttentionDim().getFirst());
        // diffusers 0.21 reads the head count from attention_head_dim (its long-kept naming bug)
        c.attentionHeads().forEach(j.putArray("attention_head_dim")::add);
        c.transformerLayersPerBlock().forEach(j.putArray("transformer_layers_per_block")::add);
        j.put("norm_num_groups", c.normNumGroups());
        j.put("norm_eps", c.normEps());
        j.put("flip_sin_to_cos", c.flipSinToCos());
        j.put("freq_shift", c.freqShift());
        j.put("use_linear_projection", c.useLinearProjection());
        j.put("upcast_attention", c.upcastAttention());
        j.put("mid_block_scale_factor", c.midBlockScaleFactor());
        j.put("conv_in_kernel", c.convInKernel());
        j.put("conv_out_kernel", c.convOutKernel());
        j.put("act_fn", "silu");
        j.put("downsample_padding", 1);
        j.put("center_input_sample", false);
        if (c.textTime() != null) {   // SDXL's added conditioning
            j.put("addition_embed_type", "text_time");
            j.put("addition_time_embed_dim", c.textTime().timeEmbedDim());
            j.put("projection_class_embeddings_input_dim", c.textTime().inputDim());
        }
        return j.toPrettyString() + "\n";
    }
}
