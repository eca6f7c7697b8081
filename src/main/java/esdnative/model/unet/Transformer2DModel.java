package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.nn.Conv2d;
import esdnative.model.nn.GroupNorm;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' Transformer2DModel on continuous inputs: x [n, c, h, w] → GroupNorm (eps 1e-6) → proj_in (1×1 conv,
 * or a linear on tokens when use_linear_projection) → tokens [n, hw, inner] → BasicTransformerBlocks → proj_out
 * → back to [n, c, h, w] → + x.
 */
public final class Transformer2DModel {
    private static final float NORM_EPS = 1e-6f;
    private final GroupNorm norm;
    private final boolean linearProjection;
    private final Conv2d projInConv;
    private final Conv2d projOutConv;
    private final Linear projInLinear;
    private final Linear projOutLinear;
    private final List<BasicTransformerBlock> blocks = new ArrayList<>();
    private final int channels;
    private final int inner;

    /**
     * {@code tokensIn}: the normed input as tokens (linear projection only); {@code tokensOut}: the blocks' output
     * [n, hw, inner]; {@code channelsOut}: tokensOut in channel-first layout (conv projection only).
     */
    public record Act(Tensor x, GroupNorm.Act norm, Tensor tokensIn,
                      List<BasicTransformerBlock.Act> blocks, Tensor tokensOut, Tensor channelsOut, Tensor out) {}

    public Transformer2DModel(String name, int channels, int heads, int headDim, int contextDim, int layers,
                              int groups, boolean linearProjection) {
        this.channels = channels;
        this.inner = heads * headDim;
        this.linearProjection = linearProjection;
        this.norm = new GroupNorm(name + ".norm", channels, groups, NORM_EPS);
        if (linearProjection) {
            this.projInLinear = new Linear(name + ".proj_in", channels, inner, true);
            this.projOutLinear = new Linear(name + ".proj_out", inner, channels, true);
            this.projInConv = null;
            this.projOutConv = null;
        } else {
            this.projInConv = new Conv2d(name + ".proj_in", channels, inner, 1, 1, 0);
            this.projOutConv = new Conv2d(name + ".proj_out", inner, channels, 1, 1, 0);
            this.projInLinear = null;
            this.projOutLinear = null;
        }
        for (int i = 0; i < layers; i++) {
            blocks.add(new BasicTransformerBlock(name + ".transformer_blocks." + i, inner, heads, headDim, contextDim));
        }
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        norm.declare(shapes);
        if (linearProjection) projInLinear.declare(shapes);
        else projInConv.declare(shapes);
        for (BasicTransformerBlock b : blocks) b.declare(shapes);
        if (linearProjection) projOutLinear.declare(shapes);
        else projOutConv.declare(shapes);
    }

    /**
     * x [n, c, h, w], context [n, lk, contextDim] → [n, c, h, w]; in inference ({@code !train}) its temporaries are
     * recycled once it returns.
     */
    public Act forward(Backend be, Weights p, Tensor x, Tensor context, boolean train) {
        try (Scope scope = Scope.unlessTraining(be, train)) {
            Act a = run(be, p, x, context, train);
            scope.keep(a.out());
            return a;
        }
    }

    private Act run(Backend be, Weights p, Tensor x, Tensor context, boolean train) {
        int n = x.dim(0), h = x.dim(2), w = x.dim(3), hw = h * w;
        GroupNorm.Act gn = norm.forward(be, p, x);
        Tensor tokensIn = null;
        Tensor tokens;
        if (linearProjection) {
            tokensIn = be.zeros(n, hw, channels);
            be.transpose(tokensIn, gn.out(), n, channels, hw);
            tokens = projInLinear.forward(be, p, tokensIn, n * hw).reshape(n, hw, inner);
        } else {
            Tensor projected = projInConv.forward(be, p, gn.out());
            tokens = be.zeros(n, hw, inner);
            be.transpose(tokens, projected, n, inner, hw);
        }
        List<BasicTransformerBlock.Act> acts = new ArrayList<>();
        for (BasicTransformerBlock b : blocks) {
            try (Scope scope = Scope.unlessTraining(be, train)) {
                BasicTransformerBlock.Act a = b.forward(be, p, tokens, context, train);
                acts.add(a);
                tokens = a.out();
                scope.keep(tokens);
            }
        }
        Tensor channelsOut = null;
        Tensor out;
        if (linearProjection) {
            Tensor o = projOutLinear.forward(be, p, tokens, n * hw);
            out = be.zeros(n, channels, h, w);
            be.transpose(out, o, n, hw, channels);
            be.add(out, out, x, out.size());
        } else {
            channelsOut = be.zeros(n, inner, h, w);
            be.transpose(channelsOut, tokens, n, hw, inner);
            out = projOutConv.forwardResidual(be, p, channelsOut, x);
        }
        return new Act(x, gn, tokensIn, acts, tokens, channelsOut, out);
    }

    /** dx += ∂/∂x, dContext += ∂/∂context (may be null). */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dContext, Tensor dOut, Act a) {
        int n = a.x().dim(0), h = a.x().dim(2), w = a.x().dim(3), hw = h * w;
        be.axpy(dx, 1f, dOut, dOut.size()); // residual
        Tensor dTokens = be.zeros(n, hw, inner);
        if (linearProjection) {
            Tensor dO = be.zeros(n, hw, channels);
            be.transpose(dO, dOut, n, channels, hw);
            projOutLinear.backward(be, p, g, dTokens, dO, a.tokensOut(), n * hw);
        } else {
            Tensor dChannels = be.zeros(n, inner, h, w);
            projOutConv.backward(be, p, g, dChannels, dOut, a.channelsOut());
            be.transpose(dTokens, dChannels, n, inner, hw);
        }
        for (int i = blocks.size() - 1; i >= 0; i--) {
            Tensor dPrev = be.zeros(n, hw, inner);
            blocks.get(i).backward(be, p, g, dPrev, dContext, dTokens, a.blocks().get(i));
            dTokens = dPrev;
        }
        Tensor dNormed = be.zeros(a.x().shape());
        if (linearProjection) {
            Tensor dTokensIn = be.zeros(n, hw, channels);
            projInLinear.backward(be, p, g, dTokensIn, dTokens, a.tokensIn(), n * hw);
            be.transpose(dNormed, dTokensIn, n, hw, channels);
        } else {
            Tensor dProjected = be.zeros(n, inner, h, w);
            be.transpose(dProjected, dTokens, n, hw, inner);
            projInConv.backward(be, p, g, dNormed, dProjected, a.norm().out());
        }
        norm.backward(be, p, g, dx, dNormed, a.x(), a.norm());
    }
}
