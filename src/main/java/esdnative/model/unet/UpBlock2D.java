package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' CrossAttnUpBlock2D (with attentions) or UpBlock2D (without): {@code layers} × (concatenate
 * [h | skip] on channels → ResnetBlock2D [→ Transformer2DModel]), then an Upsample2D unless it is the last block.
 * Resnet i takes prevOut (i = 0) or out channels, plus the skip's channels: {@code in} for the last resnet,
 * {@code out} for the others (diffusers' res_skip_channels).
 */
public final class UpBlock2D {
    private final ResnetAttentionStages stages;
    private final Upsample2D upsampler;

    /** {@code skips}: the skip connection each stage concatenated, in stage order. */
    public record Act(Tensor x, List<Tensor> skips, List<ResnetAttentionStages.Act> stages, Upsample2D.Act upsample,
                      Tensor out) {
        /** The hidden state that entered stage i's concatenation: the block's input or stage i − 1's output. */
        Tensor stageInput(int i) { return i == 0 ? x : stages.get(i - 1).out(); }
    }

    public UpBlock2D(String name, boolean crossAttention, int layers, int in, int out, int prevOut, int tembChannels,
                     boolean addUpsample, int groups, float eps, int heads, int contextDim, int transformerLayers,
                     boolean linearProjection) {
        this.stages = new ResnetAttentionStages(name, layers,
                i -> (i == 0 ? prevOut : out) + (i == layers - 1 ? in : out), out, tembChannels, groups, eps,
                crossAttention, heads, contextDim, transformerLayers, linearProjection);
        this.upsampler = addUpsample ? new Upsample2D(name + ".upsamplers.0", out) : null;
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        stages.declare(shapes);
        if (upsampler != null) upsampler.declare(shapes);
    }

    /**
     * Pops one skip connection per stage off the down path's stack (the latest state first); the upsampler then
     * meets the size of the skip left on top, which the next up block takes first (diffusers' upsample_size).
     */
    public Act forward(Backend be, Weights p, Tensor x, Deque<Tensor> skips, Tensor tembAct, Tensor context,
                       boolean train) {
        List<Tensor> mine = new ArrayList<>();
        for (int i = 0; i < stages.size(); i++) mine.add(skips.pop());
        List<ResnetAttentionStages.Act> acts = stages.forward(be, p, x, (i, h) -> {
            Tensor skip = mine.get(i);
            int n = h.dim(0), ch = h.dim(1), cs = skip.dim(1);
            Tensor cat = be.zeros(n, ch + cs, h.dim(2), h.dim(3));
            be.concatChannels(cat, h, skip, n, ch, cs, h.dim(2) * h.dim(3));
            return cat;
        }, tembAct, context, train);
        Tensor h = acts.getLast().out();
        Upsample2D.Act up = null;
        if (upsampler != null) {
            Tensor next = skips.peek();
            up = upsampler.forward(be, p, h, next.dim(2), next.dim(3));
            h = up.out();
        }
        return new Act(x, mine, acts, up, h);
    }

    /** dx += ∂/∂x; pushes the gradients of the skips this block popped back onto {@code dSkips}, in mirror order. */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Deque<Tensor> dSkips, Tensor dTembAct,
                         Tensor dContext, Tensor dOut, Act a) {
        // the skips' gradients outlive the block (the down blocks take them); the other gradients are recycled
        try (Scope scope = be.openScope()) {
            Tensor d = dOut;
            if (upsampler != null) {
                Tensor dPrev = be.zeros(a.upsample().x().shape());
                upsampler.backward(be, p, g, dPrev, d, a.upsample());
                d = dPrev;
            }
            stages.backward(be, p, g, dTembAct, dContext, d, a.stages(),
                    i -> be.zeros(a.stages().get(i).resnet().x().shape()),
                    (i, dCat) -> {
                        Tensor in = a.stageInput(i), skip = a.skips().get(i);
                        Tensor dIn = i > 0 ? be.zeros(in.shape()) : dx;
                        Tensor dSkip = be.zeros(skip.shape());
                        be.splitChannels(dIn, dSkip, dCat, in.dim(0), in.dim(1), skip.dim(1), in.dim(2) * in.dim(3));
                        scope.keep(dSkip);
                        dSkips.push(dSkip);
                        return dIn;
                    });
        }
    }
}
