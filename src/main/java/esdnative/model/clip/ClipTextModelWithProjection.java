package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.SequencedMap;

/**
 * transformers 4.33's CLIPTextModelWithProjection (SDXL's second text encoder, OpenCLIP bigG): the text model and
 * a bias-free {@code text_projection} [projectionDim, hidden] of the pooled output → text_embeds.
 *
 * @param projection the projection's weight, named {@code text_projection.weight} as in the checkpoint
 */
public record ClipTextModelWithProjection(ClipTextModel text, Weights projection, int projectionDim) {

    /** The projection's parameter, by its checkpoint name. */
    public static SequencedMap<String, int[]> projectionShapes(ClipTextConfig c, int projectionDim) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        projection(c.hiddenSize(), projectionDim).declare(shapes);
        return shapes;
    }

    private static Linear projection(int hidden, int projectionDim) {
        return new Linear("text_projection", hidden, projectionDim, false);
    }

    /** hidden_states[layer] [batch, seq, hidden] and text_embeds [batch, projectionDim]. */
    public record Output(Tensor hidden, Tensor textEmbeds) {}

    /** One pass over token ids [batch, seq] (row-major): hidden_states[{@code layer}] and the projected pooled output. */
    public Output encode(int[] ids, int batch, int layer) {
        Backend be = text.backend();
        ClipTextModel.States states = text.states(ids, batch, layer);
        Tensor pooled = text.pooled(states.last(), ids, batch);
        Tensor embeds = projection(text.config().hiddenSize(), projectionDim).forward(be, projection, pooled, batch);
        return new Output(states.hidden(), embeds);
    }
}
