package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * transformers' CLIPEncoder: {@code layers} pre-LayerNorm transformer layers, shared by the text tower (causal
 * self-attention) and the vision tower (full self-attention). Per layer:
 * x += out_proj(attention(layer_norm1(x))); x += fc2(act(fc1(layer_norm2(x)))).
 *
 * <p>Weight names are {@code encoder.layers.N.*} under the tower's own prefix (e.g. without "text_model.").
 *
 * @param hiddenAct "quick_gelu" or "gelu"
 */
public record ClipEncoder(int hiddenSize, int intermediateSize, int layers, int heads, String hiddenAct,
                          float layerNormEps) {

    /** Declares every layer's parameters, in checkpoint order. */
    public void declare(SequencedMap<String, int[]> shapes) {
        int h = hiddenSize;
        for (int l = 0; l < layers; l++) {
            String p = "encoder.layers." + l + ".";
            putLayerNorm(shapes, p + "layer_norm1", h);
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                putLinear(shapes, p + "self_attn." + proj, h, h);
            }
            putLayerNorm(shapes, p + "layer_norm2", h);
            putLinear(shapes, p + "mlp.fc1", h, intermediateSize);
            putLinear(shapes, p + "mlp.fc2", intermediateSize, h);
        }
    }

    static void putLinear(SequencedMap<String, int[]> shapes, String name, int in, int out) {
        shapes.put(name + ".weight", new int[] {out, in});
        shapes.put(name + ".bias", new int[] {out});
    }

    static void putLayerNorm(SequencedMap<String, int[]> shapes, String name, int dim) {
        shapes.put(name + ".weight", new int[] {dim});
        shapes.put(name + ".bias", new int[] {dim});
    }

    /** Runs every layer on the residual stream x [batch, seq, hidden] in place. */
    public void forward(Backend backend, Weights weights, Tensor x, int batch, int seq, boolean causal) {
        int h = hiddenSize, inter = intermediateSize, rows = batch * seq;
        int d = h / heads;
        float scale = (float) Math.pow(d, -0.5);

        Tensor normed = backend.zeros(rows, h);
        Tensor mean = backend.zeros(rows), rstd = backend.zeros(rows);
        Tensor q = backend.zeros(rows, h), k = backend.zeros(rows, h), v = backend.zeros(rows, h);
        Tensor attended = backend.zeros(rows, h), projected = backend.zeros(rows, h);
        Tensor hidden = backend.zeros(rows, inter), activated = backend.zeros(rows, inter);

        for (int l = 0; l < layers; l++) {
            String p = "encoder.layers." + l + ".";
            layerNorm(backend, weights, normed, mean, rstd, x, p + "layer_norm1", rows);
            linear(backend, weights, q, normed, p + "self_attn.q_proj", rows, h, h);
            linear(backend, weights, k, normed, p + "self_attn.k_proj", rows, h, h);
            linear(backend, weights, v, normed, p + "self_attn.v_proj", rows, h, h);
            backend.attention(attended, null, q, k, v, batch, heads, seq, seq, d, scale, causal);
            linear(backend, weights, projected, attended, p + "self_attn.out_proj", rows, h, h);
            backend.add(x, x, projected, (long) rows * h);
            layerNorm(backend, weights, normed, mean, rstd, x, p + "layer_norm2", rows);
            linear(backend, weights, hidden, normed, p + "mlp.fc1", rows, h, inter);
            if (hiddenAct.equals("quick_gelu")) {
                backend.quickGelu(activated, hidden, (long) rows * inter);
            } else {
                backend.gelu(activated, hidden, (long) rows * inter);
            }
            linear(backend, weights, projected, activated, p + "mlp.fc2", rows, inter, h);
            backend.add(x, x, projected, (long) rows * h);
        }
    }

    /** y[rows, out] = x[rows, in] · Wᵀ + b, with W [out, in]. */
    static void linear(Backend backend, Weights weights, Tensor y, Tensor x, String name, int rows, int in, int out) {
        backend.gemm(false, true, rows, out, in, 1f, x, in, 0, weights.get(name + ".weight"), in, 0,
                0f, y, out, 0, 1);
        backend.addRowBias(y, weights.get(name + ".bias"), rows, out);
    }

    /** LayerNorm over the hidden dimension of in[rows, hidden] into out. */
    void layerNorm(Backend backend, Weights weights, Tensor out, Tensor mean, Tensor rstd, Tensor in, String name,
                   int rows) {
        backend.layerNorm(out, mean, rstd, in, weights.get(name + ".weight"), weights.get(name + ".bias"), rows,
                hiddenSize, layerNormEps);
    }
}
