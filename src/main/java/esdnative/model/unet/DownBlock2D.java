package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' CrossAttnDownBlock2D (with attentions) or DownBlock2D (without): {@code layers} × (ResnetBlock2D
 * [→ Transformer2DModel]), then a Downsample2D (3×3 conv, stride 2, padding 1) unless it is the last block.
 * Every stage's output is also a skip connection ("output state") for the up blocks.
 */
public final class DownBlock2D {
    private final List<ResnetBlock2D> resnets = new ArrayList<>();
    private final List<Transformer2DModel> attentions = new ArrayList<>();
    private final Conv2d downsampler;

    /** {@code states}: the output states in order (the last is the block's output). */
    public record Act(Tensor x, List<ResnetBlock2D.Act> resnets, List<Transformer2DModel.Act> attentions,
                      List<Tensor> states) {
        public Tensor out() { return states.getLast(); }
    }

    public DownBlock2D(String name, boolean crossAttention, int layers, int in, int out, int tembChannels,
                       boolean addDownsample, int groups, float eps, int heads, int contextDim,
                       int transformerLayers, boolean linearProjection) {
        for (int i = 0; i < layers; i++) {
            resnets.add(new ResnetBlock2D(name + ".resnets." + i, i == 0 ? in : out, out, tembChannels, groups, eps, 1f));
            if (crossAttention) {
                attentions.add(new Transformer2DModel(name + ".attentions." + i, out, heads, out / heads, contextDim,
                        transformerLayers, groups, linearProjection));
            }
        }
        this.downsampler = addDownsample ? new Conv2d(name + ".downsamplers.0.conv", out, out, 3, 2, 1) : null;
    }

    /** Number of skip connections this block hands the up blocks. */
    public int stateCount() { return resnets.size() + (downsampler != null ? 1 : 0); }

    public void declare(SequencedMap<String, int[]> shapes) {
        for (int i = 0; i < resnets.size(); i++) {
            resnets.get(i).declare(shapes);
            if (!attentions.isEmpty()) attentions.get(i).declare(shapes);
        }
        if (downsampler != null) downsampler.declare(shapes);
    }

    /** {@code train}: keep what backward needs (else the attention probabilities are dropped). */
    public Act forward(Backend be, Weights p, Tensor x, Tensor tembAct, Tensor context, boolean train) {
        List<ResnetBlock2D.Act> ra = new ArrayList<>();
        List<Transformer2DModel.Act> ta = new ArrayList<>();
        List<Tensor> states = new ArrayList<>();
        Tensor h = x;
        for (int i = 0; i < resnets.size(); i++) {
            try (Scope scope = Scope.unlessTraining(be, train)) {
                ResnetBlock2D.Act r = resnets.get(i).forward(be, p, h, tembAct);
                ra.add(r);
                h = r.out();
                scope.keep(h);
            }
            if (!attentions.isEmpty()) {
                Transformer2DModel.Act t = attentions.get(i).forward(be, p, h, context, train);
                ta.add(t);
                h = t.out();
            }
            states.add(h);
        }
        if (downsampler != null) {
            h = downsampler.forward(be, p, h);
            states.add(h);
        }
        return new Act(x, ra, ta, states);
    }

    /**
     * dx += ∂/∂x, given dOut (the gradient of the block's output from the next block) and dStates (the
     * gradients of the output states from the skip connections, same order as {@link Act#states}).
     */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dTembAct, Tensor dContext,
                         Tensor dOut, List<Tensor> dStates, Act a) {
        int last = a.states().size() - 1;
        Tensor d = Params.copyOf(be, dOut);
        be.axpy(d, 1f, dStates.get(last), d.size());
        int stage = last;
        if (downsampler != null) {
            Tensor in = a.states().get(last - 1);
            Tensor dPrev = Params.copyOf(be, dStates.get(last - 1));
            downsampler.backward(be, p, g, dPrev, d, in);
            d = dPrev;
            stage--;
        }
        for (int i = resnets.size() - 1; i >= 0; i--, stage--) {
            // d: gradient of this stage's output (skip gradient included)
            Tensor dResOut = d;
            if (!attentions.isEmpty()) {
                dResOut = be.zeros(d.shape());
                attentions.get(i).backward(be, p, g, dResOut, dContext, d, a.attentions().get(i));
            }
            Tensor dPrev = i > 0 ? Params.copyOf(be, dStates.get(stage - 1)) : dx;
            resnets.get(i).backward(be, p, g, dPrev, dTembAct, dResOut, a.resnets().get(i));
            d = dPrev;
        }
    }
}
