package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.cli.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.SequencedMap;
import java.util.function.Function;

/**
 * transformers 4.33's CLIPTextModel forward (the Stable Diffusion text encoder): token + position embeddings,
 * pre-LayerNorm transformer layers with causal self-attention, final LayerNorm → last_hidden_state.
 * Forward only: the text encoder is frozen in ESD.
 *
 * <p>Weight names are CLIPTextModel's without the {@code text_model.} prefix, e.g.
 * {@code encoder.layers.0.self_attn.q_proj.weight}. Linear weights are [out, in] as in PyTorch.
 * See https://github.com/huggingface/transformers/blob/v4.33.0/src/transformers/models/clip/modeling_clip.py
 */
public final class ClipTextModel {
    private final Backend backend;
    private final ClipTextConfig config;
    private final Weights weights;

    public ClipTextModel(Backend backend, ClipTextConfig config, Weights weights) {
        this.backend = backend;
        this.config = config;
        this.weights = weights;
    }

    /** A diffusers {@code text_encoder/} folder: config.json and model.safetensors. */
    public static ClipTextModel fromDiffusers(Backend backend, Path folder) {
        ClipTextConfig config = ClipTextConfig.read(folder.resolve("config.json"));
        try (SafetensorsFile file = SafetensorsFile.open(folder.resolve("model.safetensors"))) {
            return load(backend, config, file, "text_model.");
        }
    }

    /**
     * Loads every parameter from {@code file}, where the names carry {@code prefix}: "text_model." in diffusers'
     * model.safetensors, "cond_stage_model.transformer.text_model." in an SD1.x single file. Every tensor must be
     * present with the shape the config implies.
     */
    public static ClipTextModel load(Backend backend, ClipTextConfig config, SafetensorsFile file, String prefix) {
        SequencedMap<String, int[]> shapes = parameterShapes(config);
        for (var e : shapes.entrySet()) {
            String name = prefix + e.getKey();
            TensorInfo info = file.info(name);
            if (info == null) throw new UserError(file.path() + ": text encoder tensor \"" + name + "\" is missing");
            if (!Arrays.equals(info.intShape(), e.getValue())) {
                throw new UserError(file.path() + ": text encoder tensor \"" + name + "\" has shape "
                        + Arrays.toString(info.intShape()) + ", the config needs " + Arrays.toString(e.getValue()));
            }
        }
        return load(backend, config, name -> file.readFloats(prefix + name));
    }

    /**
     * Loads every parameter from {@code source} (name without "text_model." → floats of the declared size), for
     * checkpoints whose names need mapping.
     */
    public static ClipTextModel load(Backend backend, ClipTextConfig config, Function<String, float[]> source) {
        return new ClipTextModel(backend, config, Weights.load(backend, parameterShapes(config), source));
    }

    /** Every parameter's name and shape, in checkpoint order, from the config alone. */
    public static SequencedMap<String, int[]> parameterShapes(ClipTextConfig c) {
        int h = c.hiddenSize(), inter = c.intermediateSize();
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.token_embedding.weight", new int[] {c.vocabSize(), h});
        shapes.put("embeddings.position_embedding.weight", new int[] {c.maxPositionEmbeddings(), h});
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "encoder.layers." + l + ".";
            putLayerNorm(shapes, p + "layer_norm1", h);
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                putLinear(shapes, p + "self_attn." + proj, h, h);
            }
            putLayerNorm(shapes, p + "layer_norm2", h);
            putLinear(shapes, p + "mlp.fc1", h, inter);
            putLinear(shapes, p + "mlp.fc2", inter, h);
        }
        putLayerNorm(shapes, "final_layer_norm", h);
        return shapes;
    }

    private static void putLinear(SequencedMap<String, int[]> shapes, String name, int in, int out) {
        shapes.put(name + ".weight", new int[] {out, in});
        shapes.put(name + ".bias", new int[] {out});
    }

    private static void putLayerNorm(SequencedMap<String, int[]> shapes, String name, int dim) {
        shapes.put(name + ".weight", new int[] {dim});
        shapes.put(name + ".bias", new int[] {dim});
    }

    public ClipTextConfig config() { return config; }

    public Weights weights() { return weights; }

    /**
     * last_hidden_state [batch, seq, hidden] for token ids [batch, seq] (row-major; seq ≤ max_position_embeddings,
     * 77 for Stable Diffusion). Causal mask only, no padding mask: what StableDiffusionPipeline feeds it.
     */
    public Tensor forward(int[] ids, int batch) {
        Tensor x = embeddings(ids, batch);                 // the residual stream [batch, seq, hidden]
        int seq = x.dim(1);
        int h = config.hiddenSize(), inter = config.intermediateSize(), rows = batch * seq;
        int heads = config.numAttentionHeads(), d = config.headDim();
        float scale = (float) Math.pow(d, -0.5);

        Tensor normed = backend.zeros(rows, h);
        Tensor mean = backend.zeros(rows), rstd = backend.zeros(rows);
        Tensor q = backend.zeros(rows, h), k = backend.zeros(rows, h), v = backend.zeros(rows, h);
        Tensor attended = backend.zeros(rows, h), projected = backend.zeros(rows, h);
        Tensor hidden = backend.zeros(rows, inter), activated = backend.zeros(rows, inter);

        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "encoder.layers." + l + ".";
            // x += out_proj(attention(layer_norm1(x)))
            layerNorm(normed, mean, rstd, x, p + "layer_norm1", rows);
            linear(q, normed, p + "self_attn.q_proj", rows, h, h);
            linear(k, normed, p + "self_attn.k_proj", rows, h, h);
            linear(v, normed, p + "self_attn.v_proj", rows, h, h);
            backend.attention(attended, null, q, k, v, batch, heads, seq, seq, d, scale, true);
            linear(projected, attended, p + "self_attn.out_proj", rows, h, h);
            backend.add(x, x, projected, (long) rows * h);
            // x += fc2(act(fc1(layer_norm2(x))))
            layerNorm(normed, mean, rstd, x, p + "layer_norm2", rows);
            linear(hidden, normed, p + "mlp.fc1", rows, h, inter);
            if (config.hiddenAct().equals("quick_gelu")) {
                backend.quickGelu(activated, hidden, (long) rows * inter);
            } else {
                backend.gelu(activated, hidden, (long) rows * inter);
            }
            linear(projected, activated, p + "mlp.fc2", rows, inter, h);
            backend.add(x, x, projected, (long) rows * h);
        }
        Tensor out = backend.zeros(batch, seq, h);
        layerNorm(out, mean, rstd, x, "final_layer_norm", rows);
        return out;
    }

    /** CLIPTextEmbeddings: x[b, s] = token_embedding[ids[b, s]] + position_embedding[s] → [batch, seq, hidden]. */
    public Tensor embeddings(int[] ids, int batch) {
        if (batch < 1 || ids.length == 0 || ids.length % batch != 0) {
            throw new IllegalArgumentException(ids.length + " token ids do not split into " + batch + " sequences");
        }
        int seq = ids.length / batch, h = config.hiddenSize();
        if (seq > config.maxPositionEmbeddings()) {
            throw new IllegalArgumentException("sequence of " + seq + " tokens exceeds max_position_embeddings "
                    + config.maxPositionEmbeddings());
        }
        Tensor x = backend.zeros(batch, seq, h);
        Tensor tokens = weights.get("embeddings.token_embedding.weight");
        Tensor positions = weights.get("embeddings.position_embedding.weight").view(0, seq * h);
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " outside the vocabulary of " + config.vocabSize());
            }
            backend.copy(x.view((long) i * h, h), tokens.view((long) ids[i] * h, h));
        }
        for (int b = 0; b < batch; b++) {
            Tensor row = x.view((long) b * seq * h, seq * h);
            backend.add(row, row, positions, (long) seq * h);
        }
        return x;
    }

    /** y[rows, out] = x[rows, in] · Wᵀ + b, with W [out, in]. */
    private void linear(Tensor y, Tensor x, String name, int rows, int in, int out) {
        backend.gemm(false, true, rows, out, in, 1f, x, in, 0, weights.get(name + ".weight"), in, 0,
                0f, y, out, 0, 1);
        backend.addRowBias(y, weights.get(name + ".bias"), rows, out);
    }

    private void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, String name, int rows) {
        backend.layerNorm(out, mean, rstd, in, weights.get(name + ".weight"), weights.get(name + ".bias"), rows,
                config.hiddenSize(), config.layerNormEps());
    }
}
