package esdnative.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.testing.Fixtures;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.CompVisNames.DiffusersName;
import esdnative.checkpoint.CompVisNames.Topology;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompVisNamesTest {
    private static Path componentFile(Component c) {
        return Fixtures.path("tiny-sd-a/" + c.folder() + "/"
                + (c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors"));
    }

    /** The topology the fixture's config.json files describe (independent of any tensor name). */
    private static Topology topologyFromConfigs() {
        JsonNode unet = Json.tree(Fixtures.path("tiny-sd-a/unet/config.json"));
        JsonNode vae = Json.tree(Fixtures.path("tiny-sd-a/vae/config.json"));
        int levels = unet.get("block_out_channels").size();
        boolean[] upAttention = new boolean[levels];
        for (int i = 0; i < levels; i++) upAttention[i] = unet.get("up_block_types").get(i).textValue().contains("CrossAttn");
        return new Topology(levels, unet.get("layers_per_block").intValue(), upAttention,
                vae.get("block_out_channels").size(), vae.get("layers_per_block").intValue());
    }

    @Test
    void everyFixtureTensorMapsToTheSingleFileWithIdenticalValuesAndBack() {
        Map<Component, SafetensorsFile> parts = new EnumMap<>(Component.class);
        try (SafetensorsFile single = SafetensorsFile.open(Fixtures.path("tiny-sd-a-single-file.safetensors"))) {
            for (Component c : Component.values()) parts.put(c, SafetensorsFile.open(componentFile(c)));
            Topology fromDiffusers = Topology.fromDiffusers(parts.get(Component.UNET).names(), parts.get(Component.VAE).names());
            Topology fromCompVis = Topology.fromCompVis(single.names());
            assertEquals(topologyFromConfigs(), fromDiffusers);
            assertEquals(topologyFromConfigs(), fromCompVis);
            CompVisNames table = CompVisNames.of(fromCompVis);

            Set<String> covered = new HashSet<>();
            int reshaped = 0;
            for (var part : parts.entrySet()) {
                Component c = part.getKey();
                for (TensorInfo t : part.getValue().tensors()) {
                    String compVis = table.toCompVis(c, t.name());
                    assertNotNull(compVis, c + " " + t.name() + " has no CompVis name");
                    TensorInfo s = single.info(compVis);
                    assertNotNull(s, t.name() + " -> " + compVis + " is not in the single file");
                    assertTrue(covered.add(compVis), compVis + " is the image of two tensors");
                    assertArrayEquals(s.shape(), CompVisNames.compVisShape(compVis, t.shape()), compVis);
                    assertArrayEquals(t.shape(), CompVisNames.diffusersShape(compVis, s.shape()), compVis);
                    if (s.shape().length != t.shape().length) reshaped++;
                    assertArrayEquals(part.getValue().readFloats(t.name()), single.readFloats(compVis), compVis);
                    assertEquals(new DiffusersName(c, t.name()), table.toDiffusers(compVis), compVis);
                }
            }
            assertEquals(single.names(), covered, "single-file keys not covered");
            assertEquals(8, reshaped, "q/k/v/proj_out weights of the encoder's and decoder's mid-attention");
        } finally {
            parts.values().forEach(SafetensorsFile::close);
        }
    }

    @Test
    void stableDiffusionNamesFollowTheConversionScript() {
        // pairs spelled out by diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py for SD's 4x2 layout
        CompVisNames sd = CompVisNames.of(Topology.stableDiffusion());
        Map<String, String> unet = Map.of(
                "down_blocks.3.resnets.1.conv2.weight", "input_blocks.11.0.out_layers.3.weight",
                "down_blocks.2.downsamplers.0.conv.bias", "input_blocks.9.0.op.bias",
                "down_blocks.1.attentions.0.proj_in.weight", "input_blocks.4.1.proj_in.weight",
                "up_blocks.0.upsamplers.0.conv.weight", "output_blocks.2.1.conv.weight",
                "up_blocks.2.upsamplers.0.conv.weight", "output_blocks.8.2.conv.weight",
                "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight", "output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight",
                "up_blocks.1.resnets.2.conv_shortcut.weight", "output_blocks.5.0.skip_connection.weight",
                "mid_block.resnets.1.time_emb_proj.bias", "middle_block.2.emb_layers.1.bias",
                "time_embedding.linear_2.weight", "time_embed.2.weight",
                "conv_norm_out.bias", "out.0.bias");
        unet.forEach((hf, ldm) -> {
            assertEquals("model.diffusion_model." + ldm, sd.toCompVis(Component.UNET, hf));
            assertEquals(new DiffusersName(Component.UNET, hf), sd.toDiffusers("model.diffusion_model." + ldm));
        });
        Map<String, String> vae = Map.of(
                "decoder.up_blocks.0.resnets.2.norm1.weight", "decoder.up.3.block.2.norm1.weight",
                "decoder.up_blocks.2.upsamplers.0.conv.weight", "decoder.up.1.upsample.conv.weight",
                "encoder.down_blocks.1.resnets.0.conv_shortcut.bias", "encoder.down.1.block.0.nin_shortcut.bias",
                "encoder.down_blocks.0.downsamplers.0.conv.weight", "encoder.down.0.downsample.conv.weight",
                "decoder.mid_block.resnets.1.conv2.weight", "decoder.mid.block_2.conv2.weight",
                "encoder.mid_block.attentions.0.to_out.0.weight", "encoder.mid.attn_1.proj_out.weight",
                "decoder.mid_block.attentions.0.group_norm.bias", "decoder.mid.attn_1.norm.bias",
                "decoder.conv_norm_out.weight", "decoder.norm_out.weight",
                "post_quant_conv.weight", "post_quant_conv.weight");
        vae.forEach((hf, ldm) -> {
            assertEquals("first_stage_model." + ldm, sd.toCompVis(Component.VAE, hf));
            assertEquals(new DiffusersName(Component.VAE, hf), sd.toDiffusers("first_stage_model." + ldm));
        });
        // pre-0.21 diffusers attention names map too; they come back in the new spelling
        assertEquals("first_stage_model.decoder.mid.attn_1.q.weight", sd.toCompVis(Component.VAE, "decoder.mid_block.attentions.0.query.weight"));
        assertEquals("first_stage_model.decoder.mid.attn_1.proj_out.bias", sd.toCompVis(Component.VAE, "decoder.mid_block.attentions.0.proj_attn.bias"));
        assertEquals("cond_stage_model.transformer.text_model.final_layer_norm.weight",
                sd.toCompVis(Component.TEXT_ENCODER, "text_model.final_layer_norm.weight"));
        // what is not a model tensor has no name
        assertNull(sd.toDiffusers("model_ema.diffusion_modelinput_blocks00weight"));
        assertNull(sd.toDiffusers("alphas_cumprod"));
        assertNull(sd.toDiffusers("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"));
        assertNull(sd.toCompVis(Component.UNET, "no_such_block.weight"));
        assertNull(sd.toCompVis(Component.VAE, "decoder.mid_block.attentions.0.rel_pos.weight"));
    }
}
