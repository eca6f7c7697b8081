package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.nn.Attention;
import esdnative.model.nn.LayerNorm;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;

/**
 * transformers' CLIPEncoder: pre-LayerNorm transformer layers, shared by the text tower (causal self-attention)
 * and the vision tower (full self-attention). Per layer:
 * x += out_proj(attention(layer_norm1(x))); x += fc2(act(fc1(layer_norm2(x)))).
 *
 * <p>Weight names are {@code encoder.layers.N.*} under the tower's own prefix (e.g. without "text_model."). Holds
 * no weights: they come in as a {@link Weights}.
 */
public final class ClipEncoder {
    private final List<Layer> layers = new ArrayList<>();
    private final boolean quickGelu;

    /** One encoder layer's modules. */
    private record Layer(LayerNorm norm1, Attention selfAttn, LayerNorm norm2, Linear fc1, Linear fc2) {

        /** x [batch, seq, hidden] += self-attention, then += MLP, in place. */
        void forward(Backend be, Weights p, Tensor x, boolean quickGelu) {
            int rows = x.dim(0) * x.dim(1);
            Tensor normed = norm1.forward(be, p, x, rows).out().reshape(x.shape());
            be.add(x, x, selfAttn.forward(be, p, normed, normed, false).out(), x.size());
            Tensor hidden = fc1.forward(be, p, norm2.forward(be, p, x, rows).out(), rows);
            Tensor activated = be.zeros(hidden.shape());
            if (quickGelu) be.quickGelu(activated, hidden, hidden.size());
            else be.gelu(activated, hidden, hidden.size());
            be.add(x, x, fc2.forward(be, p, activated, rows), x.size());
        }
    }

    /** @param hiddenAct "quick_gelu" or "gelu" */
    public ClipEncoder(int hiddenSize, int intermediateSize, int layers, int heads, String hiddenAct,
                       float layerNormEps, boolean causal) {
        this.quickGelu = hiddenAct.equals("quick_gelu");
        for (int l = 0; l < layers; l++) {
            String p = "encoder.layers." + l + ".";
            this.layers.add(new Layer(new LayerNorm(p + "layer_norm1", hiddenSize, layerNormEps),
                    Attention.clip(p + "self_attn", hiddenSize, heads, causal),
                    new LayerNorm(p + "layer_norm2", hiddenSize, layerNormEps),
                    new Linear(p + "mlp.fc1", hiddenSize, intermediateSize, true),
                    new Linear(p + "mlp.fc2", intermediateSize, hiddenSize, true)));
        }
    }

    /** Number of layers. */
    public int layerCount() { return layers.size(); }

    /** Declares every layer's parameters, in checkpoint order. */
    public void declare(SequencedMap<String, int[]> shapes) {
        for (Layer l : layers) {
            l.norm1().declare(shapes);
            l.selfAttn().declare(shapes);
            l.norm2().declare(shapes);
            l.fc1().declare(shapes);
            l.fc2().declare(shapes);
        }
    }

    /** Runs layers {@code from} (inclusive) to {@code to} (exclusive) on the residual stream x [batch, seq, hidden], in place. */
    public void forward(Backend be, Weights p, Tensor x, int from, int to) {
        for (Layer l : layers.subList(from, to)) {
            try (Scope scope = be.openScope()) { // the layer's temporaries are recycled once x is updated
                l.forward(be, p, x, quickGelu);
            }
        }
    }
}
