package esdnative.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import esdnative.util.UserError;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClipTokenizerTest {
    private static ClipTokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = ClipTokenizer.load(Fixtures.path("tiny-sd-a/tokenizer"));
    }

    /** The pipeline's input_ids for the golden prompts: BOS, ids, EOS, padding with EOS, truncation to 77. */
    @Test
    void reproducesGoldenInputIds() throws IOException {
        JsonNode prompts = new ObjectMapper().readTree(Fixtures.golden("prompts.json").toFile());
        NpyArray golden = Npy.read(Fixtures.golden("tokens_input_ids.npy"));
        assertArrayEquals(new int[] {prompts.size(), 77}, golden.shape());
        long[] expected = golden.longs();
        List<String> texts = new ArrayList<>();
        for (int p = 0; p < prompts.size(); p++) {
            String prompt = prompts.get(p).asText();
            texts.add(prompt);
            long[] row = Arrays.copyOfRange(expected, p * 77, (p + 1) * 77);
            long[] actual = Arrays.stream(tokenizer.encodePadded(prompt)).asLongStream().toArray();
            assertArrayEquals(row, actual, "prompt " + p + ": " + prompt);
        }
        assertArrayEquals(expected, Arrays.stream(tokenizer.encodeBatch(texts)).asLongStream().toArray());
        assertEquals(49406, tokenizer.bosId());
        assertEquals(49407, tokenizer.eosId());
        assertEquals(49407, tokenizer.padId());
    }

    /**
     * Every crosscheck prompt gives transformers' ids without ftfy (the setup the goldens were made in); where ftfy
     * changes nothing, that is also transformers' ids and tokens with ftfy, and openai's SimpleTokenizer ids.
     */
    @Test
    void matchesTransformersOnCrosscheckPrompts() throws IOException {
        JsonNode rows = new ObjectMapper().readTree(Fixtures.path("clip-tokenizer-crosscheck.json").toFile()).get("rows");
        int withFtfyChecked = 0;
        for (JsonNode row : rows) {
            String prompt = row.get("prompt").asText();
            int[] ids = tokenizer.encode(prompt);
            assertArrayEquals(ints(row.get("hf_without_ftfy_ids")), ids, "prompt: " + prompt);
            if (row.get("hf_without_ftfy_equals_hf").asBoolean()) {
                int[] withSpecials = new int[ids.length + 2];
                withSpecials[0] = tokenizer.bosId();
                System.arraycopy(ids, 0, withSpecials, 1, ids.length);
                withSpecials[ids.length + 1] = tokenizer.eosId();
                assertArrayEquals(ints(row.get("hf_ids_with_bos_eos")), withSpecials, "prompt: " + prompt);
                List<String> tokens = new ArrayList<>();
                row.get("hf_tokens").forEach(t -> tokens.add(t.asText()));
                assertEquals(tokens, tokenizer.tokenize(prompt), "prompt: " + prompt);
                withFtfyChecked++;
            }
        }
        assertEquals(36, rows.size());
        assertEquals(29, withFtfyChecked);
    }

    @Test
    void truncationKeepsEos() {
        int[] ids = tokenizer.encodePadded("cat ".repeat(200));
        assertEquals(77, ids.length);
        assertEquals(tokenizer.bosId(), ids[0]);
        assertEquals(tokenizer.eosId(), ids[76]);
        int cat = tokenizer.encode("cat")[0];
        for (int i = 1; i < 76; i++) assertEquals(cat, ids[i]);
    }

    /**
     * SD2.x tokenizers pad with "!" (id 0) via special_tokens_map.json, which also makes "!" a no-split special
     * token: transformers maps "! !! !!!" to six 0s (output quoted in huggingface/diffusers issue #4153).
     */
    @Test
    void padTokenComesFromSpecialTokensMap(@TempDir Path dir) throws IOException {
        Path source = Fixtures.path("clip-tokenizer");
        Files.copy(source.resolve("vocab.json"), dir.resolve("vocab.json"));
        Files.copy(source.resolve("merges.txt"), dir.resolve("merges.txt"));
        Files.writeString(dir.resolve("special_tokens_map.json"), """
                {"bos_token": {"content": "<|startoftext|>"}, "eos_token": {"content": "<|endoftext|>"},
                 "pad_token": "!", "unk_token": {"content": "<|endoftext|>"}}""");
        ClipTokenizer sd2 = ClipTokenizer.load(dir);
        assertEquals(0, sd2.padId());
        int[] ids = sd2.encodePadded("a photo of a cat");
        assertArrayEquals(new int[] {49406, 320, 1125, 539, 320, 2368, 49407, 0, 0}, Arrays.copyOf(ids, 9));
        assertEquals(0, ids[76]);
        assertArrayEquals(new int[] {49406, 0, 0, 0, 0, 0, 0, 49407, 0, 0}, Arrays.copyOf(sd2.encodePadded("! !! !!!"), 10));
        assertArrayEquals(new int[] {256, 748, 995}, tokenizer.encode("! !! !!!"));
    }

    @Test
    void missingVocabIsAUserError(@TempDir Path dir) {
        UserError e = assertThrows(UserError.class, () -> ClipTokenizer.load(dir));
        assertTrue(e.getMessage().contains("vocab.json"), e.getMessage());
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
