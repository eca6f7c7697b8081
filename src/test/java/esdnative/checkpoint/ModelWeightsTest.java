package esdnative.checkpoint;

import esdnative.util.UserError;
import esdnative.testing.Fixtures;
import esdnative.checkpoint.CompVisNames.Component;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelWeightsTest {
    @Test
    void folderSingleFileAndCheckpointGiveTheSameDiffusersWeights() {
        try (ModelWeights folder = ModelWeights.open(Fixtures.path("tiny-sd-a"), ModelWeights.Ema.OFF);
             ModelWeights single = ModelWeights.open(Fixtures.path("tiny-sd-a-single-file.safetensors"), ModelWeights.Ema.OFF);
             ModelWeights ckpt = ModelWeights.open(Fixtures.path("ckpt/tiny-sd-a.ckpt"), ModelWeights.Ema.OFF)) {
            assertEquals(folder.topology(), single.topology());
            assertTrue(single.unmapped().isEmpty());
            assertEquals(306, ckpt.unmapped().size(), "EMA copies (304 + decay + num_updates)");
            for (Component c : Component.values()) {
                assertEquals(folder.names(c), java.util.Set.copyOf(single.names(c)), c.toString());
                var shapes = folder.shapes(c);
                for (String name : folder.names(c)) {
                    assertArrayEquals(shapes.get(name), single.shapes(c).get(name), name);
                    assertArrayEquals(folder.readFloats(c, name), single.readFloats(c, name), name);
                    assertArrayEquals(folder.readFloats(c, name), ckpt.readFloats(c, name), name);
                }
            }
            // the VAE's attention projections are linear in diffusers layout, whatever the source
            assertArrayEquals(new long[] {64, 64}, single.shape(Component.VAE, "decoder.mid_block.attentions.0.to_q.weight"));
            assertThrows(UserError.class, () -> single.source(Component.UNET, "no.such.weight"));
        }
    }

    /**
     * An SDXL single file's UNet and VAE read through the same table as its folder's: every tensor, SDXL's
     * add_embedding (sgm's label_emb.0.0 / label_emb.0.2) included, bit for bit; the text encoders
     * (conditioner.embedders.*) are SdxlTensors' and stay unmapped here.
     */
    @Test
    void sdxlSingleFileGivesTheFoldersUnetWithItsAddEmbedding() {
        try (ModelWeights folder = ModelWeights.open(Fixtures.path("tiny-sdxl-a"), ModelWeights.Ema.OFF);
             ModelWeights single = ModelWeights.open(Fixtures.path("tiny-sdxl-a-single-file.safetensors"), ModelWeights.Ema.OFF)) {
            assertEquals(folder.topology(), single.topology());
            for (String n : List.of("add_embedding.linear_1.weight", "add_embedding.linear_1.bias",
                    "add_embedding.linear_2.weight", "add_embedding.linear_2.bias")) {
                assertTrue(single.names(Component.UNET).contains(n), n);
                assertArrayEquals(folder.shape(Component.UNET, n), single.shape(Component.UNET, n), n);
                assertArrayEquals(folder.readFloats(Component.UNET, n), single.readFloats(Component.UNET, n), n);
            }
            for (Component c : List.of(Component.UNET, Component.VAE)) {
                assertEquals(folder.names(c), java.util.Set.copyOf(single.names(c)), c.toString());
                for (String n : folder.names(c)) assertArrayEquals(folder.readFloats(c, n), single.readFloats(c, n), n);
            }
            assertTrue(single.unmapped().stream().allMatch(n -> n.startsWith("conditioner.embedders.")), single.unmapped().toString());
        }
    }

    @Test
    void refusesWhatIsNoWholeModel() {
        for (String path : List.of("tiny-sd-a/unet/diffusion_pytorch_model.safetensors", "tiny-sd-a/unet")) {
            assertThrows(UserError.class, () -> ModelWeights.open(Fixtures.path(path), ModelWeights.Ema.OFF).close(), path);
        }
        assertThrows(UserError.class, () -> ModelWeights.open(Fixtures.path("tiny-sd-a-single-file.safetensors"), ModelWeights.Ema.REQUIRE).close());
    }
}
