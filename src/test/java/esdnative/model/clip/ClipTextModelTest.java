package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.testing.FixtureWeights;
import esdnative.util.UserError;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import esdnative.text.ClipTokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
    void parameterShapesMatchTheCheckpoint() {
        ClipTextConfig config = ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json"));
        SequencedMap<String, int[]> declared = ClipTextModel.parameterShapes(config);
        try (SafetensorsFile file = SafetensorsFile.open(Fixtures.path("tiny-sd-a/text_encoder/model.safetensors"))) {
            assertEquals(file.names().size(), declared.size());
            for (var e : declared.entrySet()) {
                TensorInfo info = file.info("text_model." + e.getKey());
                assertArrayEquals(info.intShape(), e.getValue(), e.getKey());
            }
        }
    }

    /** Embeddings and last_hidden_state for the 10 golden prompts (batch 10 × 77 tokens) vs transformers. */
    @Test
    void forwardMatchesTransformers() {
        int[] ids = goldenIds();
        try (Backend cpu = new CpuBackend()) {
            ClipTextModel model = FixtureWeights.textEncoder(cpu, ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json")),
                    Fixtures.path("tiny-sd-a"));
            Goldens.assertClose("text_embeddings_input", cpu.toHost(model.embeddings(ids, ids.length / 77)));
            Goldens.assertClose("text_last_hidden_state", cpu.toHost(model.forward(ids, ids.length / 77)));
        }
    }

    /** The whole text path: the golden prompts' strings → tokenizer → text encoder → the SD context. */
    @Test
    void promptsToContext() {
        List<String> prompts = new ArrayList<>();
        Json.tree(Fixtures.golden("prompts.json")).forEach(p -> prompts.add(p.asText()));
        ClipTokenizer tokenizer = ClipTokenizer.load(Fixtures.path("tiny-sd-a/tokenizer"));
        try (Backend cpu = new CpuBackend()) {
            ClipTextModel model = FixtureWeights.textEncoder(cpu, ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json")),
                    Fixtures.path("tiny-sd-a"));
            Goldens.assertClose("text_last_hidden_state", cpu.toHost(model.forward(tokenizer.encodeBatch(prompts), prompts.size())));
        }
    }

    /** The same weights from the CompVis single file (cond_stage_model.transformer.text_model.*). */
    @Test
    void loadsFromTheSingleFile() {
        int[] ids = goldenIds();
        ClipTextConfig config = ClipTextConfig.read(Fixtures.path("tiny-sd-a/text_encoder/config.json"));
        try (Backend cpu = new CpuBackend()) {
            ClipTextModel model = FixtureWeights.textEncoder(cpu, config, Fixtures.path("tiny-sd-a-single-file.safetensors"));
            Goldens.assertClose("text_last_hidden_state", cpu.toHost(model.forward(ids, ids.length / 77)));
        }
    }

    @Test
    void shapeMismatchIsAUserError() {
        ClipTextConfig wrong = new ClipTextConfig(49408, 32, 64, 2, 4, 77, "quick_gelu", 1e-5f);
        try (Backend cpu = new CpuBackend()) {
            UserError e = assertThrows(UserError.class, () -> FixtureWeights.textEncoder(cpu, wrong, Fixtures.path("tiny-sd-a")));
            assertTrue(e.getMessage().contains("text_model.encoder.layers.0.mlp.fc1.weight"), e.getMessage());
        }
    }

    private static int[] goldenIds() {
        return Arrays.stream(Npy.read(Fixtures.golden("tokens_input_ids.npy")).longs()).mapToInt(Math::toIntExact).toArray();
    }
}
