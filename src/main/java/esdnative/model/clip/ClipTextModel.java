package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.LayerNorm;
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
    private final ClipEncoder encoder;
    private final LayerNorm finalLayerNorm;

    public ClipTextModel(Backend backend, ClipTextConfig config, Weights weights) {
        this.backend = backend;
        this.config = config;
        this.weights = weights;
        this.encoder = encoder(config);
        this.finalLayerNorm = finalLayerNorm(config);
    }

    /** Every parameter's name and shape, in checkpoint order, from the config alone. */
    public static SequencedMap<String, int[]> parameterShapes(ClipTextConfig c) {
        int h = c.hiddenSize();
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.token_embedding.weight", new int[] {c.vocabSize(), h});
        shapes.put("embeddings.position_embedding.weight", new int[] {c.maxPositionEmbeddings(), h});
        encoder(c).declare(shapes);
        finalLayerNorm(c).declare(shapes);
        return shapes;
    }

    private static ClipEncoder encoder(ClipTextConfig c) {
        return new ClipEncoder(c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.hiddenAct(), c.layerNormEps(), true);
    }

    private static LayerNorm finalLayerNorm(ClipTextConfig c) {
        return new LayerNorm("final_layer_norm", c.hiddenSize(), c.layerNormEps());
    }

    public ClipTextConfig config() { return config; }

    public Weights weights() { return weights; }

    /** The backend the weights live on. */
    public Backend backend() { return backend; }

    /**
     * last_hidden_state [batch, seq, hidden] for token ids [batch, seq] (row-major; seq ≤ max_position_embeddings,
     * 77 for Stable Diffusion). Causal mask only, no padding mask: what StableDiffusionPipeline feeds it.
     */
    public Tensor forward(int[] ids, int batch) {
        Tensor x = embeddings(ids, batch);                 // the residual stream [batch, seq, hidden]
        encoder.forward(backend, weights, x, 0, encoder.layerCount());
        return applyFinalLayerNorm(x);
    }

    /** hidden_states[layer]: the residual stream after {@code layer} layers, and last_hidden_state. */
    public record States(Tensor hidden, Tensor last) {}

    /**
     * {@link #forward}'s last_hidden_state and, from the same pass, hidden_states[{@code layer}] (without the
     * final LayerNorm; SDXL reads the penultimate, layer = layers − 1).
     */
    public States states(int[] ids, int batch, int layer) {
        if (layer < 0 || layer > encoder.layerCount()) {
            throw new IllegalArgumentException("hidden state " + layer + " of a " + encoder.layerCount() + "-layer encoder");
        }
        Tensor x = embeddings(ids, batch);
        encoder.forward(backend, weights, x, 0, layer);
        Tensor hidden = backend.zeros(x.shape());
        backend.copy(hidden, x);
        encoder.forward(backend, weights, x, layer, encoder.layerCount());
        return new States(hidden, applyFinalLayerNorm(x));
    }

    private Tensor applyFinalLayerNorm(Tensor x) {
        return finalLayerNorm.forward(backend, weights, x, x.dim(0) * x.dim(1)).out().reshape(x.shape());
    }

    /**
     * pooler_output [batch, hidden]: each sequence's state at its end token, found as transformers 4.33 finds it
     * for these configs: the first position of the largest id (EOS is the vocabulary's last token).
     */
    public Tensor pooled(Tensor states, int[] ids, int batch) {
        int seq = ids.length / batch, h = config.hiddenSize();
        Tensor pooled = backend.zeros(batch, h);
        for (int b = 0; b < batch; b++) {
            int eos = 0;
            for (int s = 1; s < seq; s++) if (ids[b * seq + s] > ids[b * seq + eos]) eos = s;
            backend.copy(pooled.view((long) b * h, h), states.view(((long) b * seq + eos) * h, h));
        }
        return pooled;
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
