package esdnative.model.unet;

import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UNetConfigTest {

    private static long count(SequencedMap<String, int[]> shapes) {
        long n = 0;
        for (int[] s : shapes.values()) n += Arrays.stream(s).asLongStream().reduce(1, (a, b) -> a * b);
        return n;
    }

    @Test
    void sd14HasTheKnownParameterCount() {
        assertEquals(859_520_964L, count(UNet2DConditionModel.parameterShapes(UNetConfig.sd14())));
    }

    @Test
    void sd14AndSd2Have686Tensors() {
        assertEquals(686, UNet2DConditionModel.parameterShapes(UNetConfig.sd14()).size());
        assertEquals(686, UNet2DConditionModel.parameterShapes(UNetConfig.sd2()).size());
    }

    @Test
    void sd2UsesLinearProjectionsAnd64ChannelHeads() {
        SequencedMap<String, int[]> shapes = UNet2DConditionModel.parameterShapes(UNetConfig.sd2());
        // the size of SD 2.x's exported UNet parameter buffer in buddy-compiler/buddy-mlir's stable diffusion examples
        assertEquals(865_910_724L, count(shapes));
        assertArrayEquals(new int[] {320, 320}, shapes.get("down_blocks.0.attentions.0.proj_in.weight"));
        assertArrayEquals(new int[] {320, 1024},
                shapes.get("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
        assertArrayEquals(new int[] {1280, 1024}, shapes.get("mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight"));
    }

    @Test
    void tinyConfigShapesMatchTheDiffusersFileExactly() throws IOException {
        UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        assertEquals(config, UNetConfig.tiny());
        assertEquals(List.of(32, 64), config.blockOutChannels());
        assertEquals(List.of(8, 8), config.attentionHeads());
        assertEquals(128, config.timeEmbeddingDim());

        Map<String, List<Integer>> expected = safetensorsShapes(Fixtures.path("tiny-sd-a/unet/diffusion_pytorch_model.safetensors"));
        Map<String, List<Integer>> ours = new TreeMap<>();
        UNet2DConditionModel.parameterShapes(config).forEach((k, v) -> ours.put(k, Arrays.stream(v).boxed().toList()));
        assertEquals(expected, ours);
    }

    @Test
    void unsupportedFeaturesAreUserErrorsNamingFileAndKey(@TempDir Path dir) throws IOException {
        String tiny = Files.readString(Fixtures.path("tiny-sd-a/unet/config.json"));
        Path bad = dir.resolve("config.json");
        Files.writeString(bad, tiny.replace("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\""));
        UserError e = assertThrows(UserError.class, () -> UNetConfig.fromJson(bad));
        assertTrue(e.getMessage().contains("class_embed_type") && e.getMessage().contains(bad.toString()), e.getMessage());

        Files.writeString(bad, tiny.replace("\"DownBlock2D\"", "\"SimpleCrossAttnDownBlock2D\""));
        e = assertThrows(UserError.class, () -> UNetConfig.fromJson(bad));
        assertTrue(e.getMessage().contains("SimpleCrossAttnDownBlock2D"), e.getMessage());

        Files.writeString(bad, "[1, 2]");
        assertThrows(UserError.class, () -> UNetConfig.fromJson(bad));
        assertThrows(UserError.class, () -> UNetConfig.fromJson(dir.resolve("missing.json")));
    }

    @Test
    void perBlockListsAreRead(@TempDir Path dir) throws IOException {
        String tiny = Files.readString(Fixtures.path("tiny-sd-a/unet/config.json"));
        Path f = dir.resolve("config.json");
        Files.writeString(f, tiny.replace("\"attention_head_dim\": 8", "\"attention_head_dim\": [4, 8]")
                .replace("\"use_linear_projection\": false", "\"use_linear_projection\": true"));
        UNetConfig c = UNetConfig.fromJson(f);
        assertEquals(List.of(4, 8), c.attentionHeads());
        assertTrue(c.useLinearProjection());
        assertFalse(c.upcastAttention());
    }

    private static Map<String, List<Integer>> safetensorsShapes(Path file) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            Map<String, List<Integer>> out = new TreeMap<>();
            for (TensorInfo t : st.tensors()) out.put(t.name(), Arrays.stream(t.intShape()).boxed().toList());
            return out;
        }
    }
}
