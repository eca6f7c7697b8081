package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.testing.Fixtures;
import esdnative.text.GoldenNpy;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClipTextModelTest {

    /** CLIP ViT-L/14's text tower (SD1.x) has 123,060,480 parameters; counted from the config, nothing allocated. */
    @Test
    void vitL14ParameterCount() {
        long total = 0;
        for (int[] shape : ClipTextModel.parameterShapes(ClipTextConfig.vitL14()).values()) {
            long n = 1;
            for (int d : shape) n *= d;
            total += n;
        }
        assertEquals(123_060_480L, total);
    }

    /** The declared names and shapes are exactly the fixture checkpoint's (minus the text_model. prefix). */
    @Test
    void parameterShapesMatchTheCheckpoint() throws IOException {
        ClipTextConfig config = ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json"));
        ClipSafetensors file = ClipSafetensors.read(Fixtures.path("tiny-sd-a/text_encoder/model.safetensors"));
        SequencedMap<String, int[]> declared = ClipTextModel.parameterShapes(config);
        assertEquals(file.shapes().size(), declared.size());
        for (var e : declared.entrySet()) {
            assertArrayEquals(file.shapes().get("text_model." + e.getKey()), e.getValue(), e.getKey());
        }
    }

    /** Embeddings and last_hidden_state for the 10 golden prompts (batch 10 × 77 tokens) vs transformers. */
    @Test
    void forwardMatchesTransformers() throws IOException {
        Path golden = Fixtures.root().resolve("tiny-sd-a-golden");
        ClipTextConfig config = ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json"));
        Map<String, float[]> values = ClipSafetensors.read(Fixtures.path("tiny-sd-a/text_encoder/model.safetensors")).values();
        int[] ids = Arrays.stream(GoldenNpy.read(golden, "tokens_input_ids.npy").longs()).mapToInt(Math::toIntExact).toArray();
        int batch = ids.length / 77;
        try (Backend cpu = new CpuBackend()) {
            ClipTextModel model = ClipTextModel.load(cpu, config, name -> values.get("text_model." + name));
            float[] hidden = cpu.toHost(model.forward(ids, batch));
            assertClose(golden, "text_last_hidden_state.npy", hidden);

            float[] embeddings = cpu.toHost(model.embeddings(ids, batch));
            assertClose(golden, "text_embeddings_input.npy", embeddings);
        }
    }

    private static void assertClose(Path golden, String name, float[] actual) throws IOException {
        float[] expected = GoldenNpy.read(golden, name).floats();
        assertEquals(expected.length, actual.length, name);
        double atol = GoldenNpy.suggestedAtol(golden, name);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        System.out.printf("%s: max |java - golden| = %.3g (atol %.3g)%n", name, worst, atol);
        assertTrue(worst <= atol, name + ": max abs error " + worst + " > " + atol);
    }
}
