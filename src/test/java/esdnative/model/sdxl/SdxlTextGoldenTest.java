package esdnative.model.sdxl;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.tensor.Tensor;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * SDXL's text side against transformers 4.33 / diffusers 0.21.4 on tiny-sdxl-a: both tokenizers (exact ids), both
 * encoders' penultimate hidden states, the second's pooled projected text_embeds, encode_prompt with and without
 * force_zeros_for_empty_prompt's zeros, and add_time_ids (exact), each within the manifest's suggested_atol.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SdxlTextGoldenTest {
    private final Backend be = new CpuBackend();
    private StableDiffusionXL model;
    private List<String> prompts;

    @BeforeAll
    void setUp() {
        model = StableDiffusionXL.loadFolder(be, TinySdxl.model(""));
        prompts = new ArrayList<>();
        for (JsonNode p : Json.tree(TinySdxl.golden("prompts.json"))) prompts.add(p.asText());
        assertEquals(10, prompts.size());
    }

    private int[] ids(boolean second) {
        int[] all = new int[prompts.size() * 77];
        for (int i = 0; i < prompts.size(); i++) {
            int[] one = (second ? model.text().tokenizer2() : model.text().tokenizer()).encodePadded(prompts.get(i));
            System.arraycopy(one, 0, all, i * 77, 77);
        }
        return all;
    }

    private static int[] goldenIds(String name) {
        long[] l = TinySdxl.npy(name).longs();
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) out[i] = Math.toIntExact(l[i]);
        return out;
    }

    @Test
    void tokenizersPadDifferently() {
        assertArrayEquals(goldenIds("tokens_input_ids"), ids(false));
        assertArrayEquals(goldenIds("tokens_2_input_ids"), ids(true));
    }

    @Test
    void textEncoders() {
        int n = prompts.size();
        ClipTextModel text1 = model.text().textEncoder();
        int[] ids1 = ids(false);
        TinySdxl.assertClose(be, "text_encoder_embeddings", text1.embeddings(ids1, n));
        ClipTextModel.States s1 = text1.states(ids1, n, 1);
        TinySdxl.assertClose(be, "text_encoder_hidden_states_penultimate", s1.hidden());
        TinySdxl.assertClose(be, "text_encoder_last_hidden_state", s1.last());

        ClipTextModelWithProjection text2 = model.text().textEncoder2();
        int[] ids2 = ids(true);
        TinySdxl.assertClose(be, "text_encoder_2_embeddings", text2.text().embeddings(ids2, n));
        ClipTextModel.States s2 = text2.text().states(ids2, n, 2);
        TinySdxl.assertClose(be, "text_encoder_2_hidden_states_penultimate", s2.hidden());
        TinySdxl.assertClose(be, "text_encoder_2_last_hidden_state", s2.last());
        TinySdxl.assertClose(be, "text_encoder_2_pooled_output", text2.text().pooled(s2.last(), ids2, n));
        ClipTextModelWithProjection.Output out = text2.encode(ids2, n, 2);
        TinySdxl.assertClose(be, "text_encoder_2_text_embeds", out.textEmbeds());
        assertArrayEquals(be.toHost(s2.hidden()), be.toHost(out.hidden()));
    }

    @Test
    void encodePrompt() {
        PromptEmbeds cat = model.text().encode("a photo of a cat");
        TinySdxl.assertClose(be, "encode_prompt_prompt_embeds", cat.embeds());
        TinySdxl.assertClose(be, "encode_prompt_pooled_prompt_embeds", cat.pooled());

        // force_zeros_for_empty_prompt and no negative prompt: zeros, exactly
        PromptEmbeds zeros = model.text().encodeNegative(null, cat);
        assertArrayEquals(TinySdxl.npy("encode_prompt_negative_prompt_embeds").floats(), be.toHost(zeros.embeds()));
        assertArrayEquals(TinySdxl.npy("encode_prompt_negative_pooled_prompt_embeds").floats(), be.toHost(zeros.pooled()));

        PromptEmbeds empty = model.text().encodeNegative("", cat);
        TinySdxl.assertClose(be, "encode_prompt_negempty_negative_prompt_embeds", empty.embeds());
        TinySdxl.assertClose(be, "encode_prompt_negempty_negative_pooled_prompt_embeds", empty.pooled());
    }

    @Test
    void addTimeIds() {
        int size = model.defaultResolution();
        assertEquals(32, size);
        assertArrayEquals(TinySdxl.npy("add_time_ids").floats(), MicroConditioning.uncropped(size, size).timeIds());
    }

    @Test
    void theSecondEncoderProjectsWithoutBias() {
        Tensor w = model.text().textEncoder2().projection().get("text_projection.weight");
        assertArrayEquals(new int[] {20, 24}, w.shape());
        assertEquals(1, model.text().textEncoder2().projection().asMap().size());
    }
}
