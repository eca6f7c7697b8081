package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.io.Json;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.util.Rng;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The toy world's tokenizer and text encoder.
 *
 * <p>Tokenizer: CLIP-format files (vocab.json, merges.txt, tokenizer_config.json) made from the toy vocabulary,
 * with merges that build each word into one whole-word token, so {@code ClipTokenizer.load} reads them and every
 * toy word is one id. Max length 8.
 *
 * <p>Text encoder: a CLIPTextModel with 0 transformer layers (token + position embedding → final LayerNorm), whose
 * word embeddings are distinct by construction: the rows of the special tokens and of every toy word are
 * orthonormal and orthogonal to the all-ones vector (so LayerNorm's centring keeps them orthogonal), scaled to unit
 * RMS; position embeddings are small. Words therefore give exactly orthogonal context vectors (cosine 0), which is
 * what ESD needs to erase one word without its neighbours (TOY-NOTES: a random encoder made prompts nearly
 * identical). The encoder is fixed, not trained: a CLIP encoder is forward-only in this engine, and orthogonal
 * embeddings already give the UNet everything a trained encoder could tell it about single words.
 */
public final class ToyText {
    public static final String BOS = "<|startoftext|>";
    public static final String EOS = "<|endoftext|>";
    public static final int HIDDEN = 32;
    public static final int MAX_LENGTH = 8;
    private static final String WORD_END = "</w>";
    private static final float POSITION_SCALE = 0.1f;

    private ToyText() {}

    /** Every toy word: the article, the colours, the shapes. */
    public static List<String> words() {
        List<String> words = new ArrayList<>();
        words.add("a");
        words.addAll(ShapesDataset.COLOURS);
        words.addAll(ShapesDataset.CLASSES);
        return words;
    }

    /**
     * The vocabulary: special tokens, then one whole-word token per toy word, then the single letters and the
     * intermediate merge pieces BPE passes through (unused as ids, but CLIP's vocab.json lists them too).
     */
    static Map<String, Integer> vocabulary() {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        vocab.put(BOS, 0);
        vocab.put(EOS, 1);
        for (String w : words()) vocab.putIfAbsent(w + WORD_END, vocab.size());
        for (char c = 'a'; c <= 'z'; c++) {
            vocab.putIfAbsent(String.valueOf(c), vocab.size());
            vocab.putIfAbsent(c + WORD_END, vocab.size());
        }
        for (List<String> merge : merges()) vocab.putIfAbsent(merge.get(0) + merge.get(1), vocab.size());
        return vocab;
    }

    /**
     * Merges that make every toy word one token under CLIP's BPE (which always applies the lowest-ranked merge
     * present): for each word in turn, run BPE with the merges so far and, while the word is still in pieces, append a
     * merge of its first two pieces. An appended merge ranks last, so it never changes how an earlier word merges.
     */
    static List<List<String>> merges() {
        List<List<String>> merges = new ArrayList<>();
        for (String w : words()) {
            List<String> pieces = bpe(w, merges);
            while (pieces.size() > 1) {
                merges.add(List.of(pieces.get(0), pieces.get(1)));
                pieces = bpe(w, merges);
            }
        }
        return merges;
    }

    /** CLIP's BPE of one lower-case ASCII word under the given merges (in rank order). */
    private static List<String> bpe(String word, List<List<String>> merges) {
        List<String> pieces = new ArrayList<>();
        for (int i = 0; i < word.length(); i++) pieces.add(word.charAt(i) + (i == word.length() - 1 ? WORD_END : ""));
        while (pieces.size() > 1) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < pieces.size(); i++) {
                int rank = merges.indexOf(List.of(pieces.get(i), pieces.get(i + 1)));
                if (rank >= 0 && rank < bestRank) {
                    bestRank = rank;
                    best = i;
                }
            }
            if (best < 0) break;
            List<String> pair = merges.get(bestRank);
            List<String> merged = new ArrayList<>();
            for (int i = 0; i < pieces.size(); i++) {
                if (i + 1 < pieces.size() && pieces.get(i).equals(pair.get(0)) && pieces.get(i + 1).equals(pair.get(1))) {
                    merged.add(pair.get(0) + pair.get(1));
                    i++;
                } else {
                    merged.add(pieces.get(i));
                }
            }
            pieces = merged;
        }
        return pieces;
    }

    public static ClipTextConfig config() {
        return new ClipTextConfig(vocabulary().size(), HIDDEN, 2 * HIDDEN, 0, 1, MAX_LENGTH, "quick_gelu", 1e-5f);
    }

    /** Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json into {@code dir}. */
    public static void writeTokenizer(Path dir) {
        try {
            Files.createDirectories(dir);
            Json.mapper().writerWithDefaultPrettyPrinter().writeValue(dir.resolve("vocab.json").toFile(), vocabulary());
            StringBuilder merges = new StringBuilder("#version: 0.2\n");
            for (List<String> m : merges()) merges.append(m.get(0)).append(' ').append(m.get(1)).append('\n');
            Files.writeString(dir.resolve("merges.txt"), merges, StandardCharsets.UTF_8);
            Map<String, Object> config = new LinkedHashMap<>();
            config.put("tokenizer_class", "CLIPTokenizer");
            config.put("bos_token", BOS);
            config.put("eos_token", EOS);
            config.put("pad_token", EOS);
            config.put("unk_token", EOS);
            config.put("model_max_length", MAX_LENGTH);
            Json.mapper().writerWithDefaultPrettyPrinter().writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The fixed encoder: orthonormal zero-mean word rows (see the class comment), small random positions. */
    public static ClipTextModel encoder(Backend be, long seed) {
        ClipTextConfig config = config();
        Weights w = Weights.allocate(be, ClipTextModel.parameterShapes(config));
        Rng rng = new Rng(seed);
        int vocab = config.vocabSize();
        int distinct = 2 + words().size(); // special tokens and whole words come first in the vocabulary
        if (distinct > HIDDEN - 1) throw new IllegalStateException(distinct + " tokens do not fit " + HIDDEN + " dimensions");

        float[] tokens = new float[vocab * HIDDEN];
        List<double[]> basis = new ArrayList<>();
        double[] ones = new double[HIDDEN];
        Arrays.fill(ones, 1 / Math.sqrt(HIDDEN));
        basis.add(ones);
        for (int id = 0; id < vocab; id++) {
            float[] gaussian = rng.normal(HIDDEN);
            double[] row = new double[HIDDEN];
            for (int i = 0; i < HIDDEN; i++) row[i] = gaussian[i];
            if (id < distinct) {
                // Gram–Schmidt against the ones vector and the earlier rows
                for (double[] b : basis) {
                    double dot = 0;
                    for (int i = 0; i < HIDDEN; i++) dot += row[i] * b[i];
                    for (int i = 0; i < HIDDEN; i++) row[i] -= dot * b[i];
                }
                double norm = 0;
                for (double x : row) norm += x * x;
                norm = Math.sqrt(norm);
                for (int i = 0; i < HIDDEN; i++) row[i] /= norm;
                basis.add(row.clone());
            } else {
                double norm = 0;
                for (double x : row) norm += x * x;
                norm = Math.sqrt(norm);
                for (int i = 0; i < HIDDEN; i++) row[i] /= norm;
            }
            // unit RMS per element: |row| = √HIDDEN
            for (int i = 0; i < HIDDEN; i++) tokens[id * HIDDEN + i] = (float) (row[i] * Math.sqrt(HIDDEN));
        }
        be.copyFromHost(w.get("embeddings.token_embedding.weight"), tokens, 0);

        float[] positions = rng.normal(MAX_LENGTH * HIDDEN);
        for (int i = 0; i < positions.length; i++) positions[i] *= POSITION_SCALE;
        be.copyFromHost(w.get("embeddings.position_embedding.weight"), positions, 0);
        be.fill(w.get("final_layer_norm.weight"), 1f);
        return new ClipTextModel(be, config, w);
    }
}
