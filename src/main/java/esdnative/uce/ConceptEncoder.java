package esdnative.uce;

import esdnative.backend.Backend;
import esdnative.model.clip.ClipTextModel;
import esdnative.text.ClipTokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * Text → the vectors UCE edits with: rows of the CLIP text encoder's last_hidden_state for the prompt as a Stable
 * Diffusion pipeline pads it (BOS, tokens, EOS, pad… to the tokenizer's max length; no attention mask), computed
 * by our float32 encoder and widened to double.
 */
public final class ConceptEncoder {
    /** prompts per encoder call: bounds the activations (SD1.x: 32 × 77 × 3072 floats at most) */
    private static final int BATCH = 32;

    private final Backend be;
    private final ClipTokenizer tokenizer;
    private final ClipTextModel encoder;

    public ConceptEncoder(Backend be, ClipTokenizer tokenizer, ClipTextModel encoder) {
        this.be = be;
        this.tokenizer = tokenizer;
        this.encoder = encoder;
    }

    /** Width of every vector (the encoder's hidden size, the UNet's cross_attention_dim). */
    public int dim() { return encoder.config().hiddenSize(); }

    /** Rows per prompt of {@link #allStates}: the padded length (77 for CLIP). */
    public int length() { return tokenizer.maxLength(); }

    /** The padded token ids a pipeline would feed the encoder. */
    public int[] tokenIds(String text) { return tokenizer.encodePadded(text); }

    /**
     * The position of the last real token, {@code attention_mask.sum() − 2} in the authors' code: the last word
     * piece, or 0 (BOS) for "".
     */
    public int lastTokenIndex(String text) {
        return Math.min(tokenizer.encode(text).length, tokenizer.maxLength() - 2);
    }

    /**
     * c(text) = last_hidden_state[lastTokenIndex] for each text, [texts][dim]. The encoder is causal, so a row
     * depends only on the tokens up to it: each batch runs only as many positions as its longest text needs
     * (the same values as the padded prompt, up to float32 rounding — the fixtures measured 2e-15 in float64).
     */
    public double[][] lastTokenStates(List<String> texts) {
        double[][] out = new double[texts.size()][];
        for (int start = 0; start < texts.size(); start += BATCH) {
            List<String> batch = texts.subList(start, Math.min(texts.size(), start + BATCH));
            int[] last = batch.stream().mapToInt(this::lastTokenIndex).toArray();
            int seq = Arrays.stream(last).max().orElse(0) + 1;
            double[][][] states = encode(batch, seq);
            for (int i = 0; i < batch.size(); i++) out[start + i] = states[i][last[i]];
        }
        return out;
    }

    /** Every row of each padded prompt, [texts][length][dim] (the 2023 form uses the padding rows too). */
    public double[][][] allStates(List<String> texts) {
        double[][][] out = new double[texts.size()][][];
        for (int start = 0; start < texts.size(); start += BATCH) {
            List<String> batch = texts.subList(start, Math.min(texts.size(), start + BATCH));
            double[][][] states = encode(batch, length());
            System.arraycopy(states, 0, out, start, states.length);
        }
        return out;
    }

    /** The first {@code seq} positions of each padded prompt through the encoder: [texts][seq][dim]. */
    private double[][][] encode(List<String> texts, int seq) {
        int n = texts.size(), dim = dim();
        int[] ids = new int[n * seq];
        for (int i = 0; i < n; i++) System.arraycopy(tokenIds(texts.get(i)), 0, ids, i * seq, seq);
        float[] hidden = be.toHost(encoder.forward(ids, n));   // [n, seq, dim]
        double[][][] out = new double[n][seq][dim];
        for (int i = 0; i < n; i++) {
            for (int s = 0; s < seq; s++) {
                for (int d = 0; d < dim; d++) out[i][s][d] = hidden[(i * seq + s) * dim + d];
            }
        }
        return out;
    }
}
