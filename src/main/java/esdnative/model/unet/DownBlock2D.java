package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.nn.Conv2d;
import esdnative.model.nn.Params;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' CrossAttnDownBlock2D (with attentions) or DownBlock2D (without): {@code layers} × (ResnetBlock2D
 * [→ Transformer2DModel]), then a Downsample2D (3×3 conv, stride 2, padding 1) unless it is the last block.
 * Every stage's output is also a skip connection ("output state") for the up blocks.
 */
public final class DownBlock2D {
    private final ResnetAttentionStages stages;
    private final Conv2d downsampler;

    /** {@code states}: the output states in order (the last is the block's output). */
    public record Act(Tensor x, List<ResnetAttentionStages.Act> stages, List<Tensor> states) {
        public Tensor out() { return states.getLast(); }
    }

    public DownBlock2D(String name, boolean crossAttention, int layers, int in, int out, int tembChannels,
                       boolean addDownsample, int groups, float eps, int heads, int contextDim,
                       int transformerLayers, boolean linearProjection) {
        this.stages = new ResnetAttentionStages(name, layers, i -> i == 0 ? in : out, out, tembChannels, groups, eps,
                crossAttention, heads, contextDim, transformerLayers, linearProjection);
        this.downsampler = addDownsample ? new Conv2d(name + ".downsamplers.0.conv", out, out, 3, 2, 1) : null;
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        stages.declare(shapes);
        if (downsampler != null) downsampler.declare(shapes);
    }

    /** {@code train}: keep what backward needs (else the attention probabilities are dropped). */
    public Act forward(Backend be, Weights p, Tensor x, Tensor tembAct, Tensor context, boolean train) {
        List<ResnetAttentionStages.Act> acts = stages.forward(be, p, x, (i, h) -> h, tembAct, context, train);
        List<Tensor> states = new ArrayList<>();
        for (ResnetAttentionStages.Act a : acts) states.add(a.out());
        if (downsampler != null) states.add(downsampler.forward(be, p, states.getLast()));
        return new Act(x, acts, states);
    }

    /**
     * dx += ∂/∂x, given dOut (the gradient of the block's output from the next block) and the skip gradients
     * stack, whose top holds the gradients of this block's output states, latest first: they are popped.
     */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dTembAct, Tensor dContext,
                         Tensor dOut, Deque<Tensor> dSkips, Act a) {
        try (Scope scope = be.openScope()) { // the gradients made here are recycled once dx has its share
            // the block's output is also its last skip
            Tensor d = Params.copyOf(be, dOut);
            be.axpy(d, 1f, dSkips.pop(), d.size());
            if (downsampler != null) {
                Tensor dPrev = dSkips.pop();
                downsampler.backward(be, p, g, dPrev, d, a.states().get(a.states().size() - 2));
                d = dPrev;
            }
            // the gradient of stage i − 1's output starts as its skip's
            stages.backward(be, p, g, dTembAct, dContext, d, a.stages(), i -> i > 0 ? dSkips.pop() : dx, (i, dIn) -> dIn);
        }
    }
}
