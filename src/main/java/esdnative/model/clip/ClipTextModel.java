package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.SequencedMap;

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

    /** Every parameter's name and shape, in checkpoint order, from the config alone. */
    public static SequencedMap<String, int[]> parameterShapes(ClipTextConfig c) {
        int h = c.hiddenSize();
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.token_embedding.weight", new int[] {c.vocabSize(), h});
        shapes.put("embeddings.position_embedding.weight", new int[] {c.maxPositionEmbeddings(), h});
        encoder(c).declare(shapes);
        ClipEncoder.putLayerNorm(shapes, "final_layer_norm", h);
        return shapes;
    }

    private static ClipEncoder encoder(ClipTextConfig c) {
        return new ClipEncoder(c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.hiddenAct(), c.layerNormEps());
    }

    public ClipTextConfig config() { return config; }

    public Weights weights() { return weights; }

    /**
     * last_hidden_state [batch, seq, hidden] for token ids [batch, seq] (row-major; seq ≤ max_position_embeddings,
     * 77 for Stable Diffusion). Causal mask only, no padding mask: what StableDiffusionPipeline feeds it.
     */
    public Tensor forward(int[] ids, int batch) {
        Tensor x = embeddings(ids, batch);                 // the residual stream [batch, seq, hidden]
        int seq = x.dim(1), rows = batch * seq;
        ClipEncoder encoder = encoder(config);
        encoder.forward(backend, weights, x, batch, seq, true);
        Tensor out = backend.zeros(batch, seq, config.hiddenSize());
        encoder.layerNorm(backend, weights, out, backend.zeros(rows), backend.zeros(rows), x, "final_layer_norm", rows);
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
}
