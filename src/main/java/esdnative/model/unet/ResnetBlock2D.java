package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.Conv2d;
import esdnative.model.nn.GroupNorm;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * diffusers' ResnetBlock2D (time_embedding_norm "default", no up/down sampling, dropout 0):
 * h = conv1(SiLU(norm1(x))) + time_emb_proj(SiLU(temb))[:, :, None, None];
 * h = conv2(SiLU(norm2(h))); out = (shortcut(x) + h) / outputScale, shortcut = 1×1 conv_shortcut when the
 * channel count changes, else identity. With tembChannels 0 (the VAE) there is no time term.
 *
 * <p>SiLU(temb) is the same for every block of a UNet, so the caller computes it once and passes it in
 * ({@code tembAct} [n, tembChannels]); backward accumulates its gradient.
 */
public final class ResnetBlock2D {
    private final GroupNorm norm1;
    private final Conv2d conv1;
    private final Linear timeEmbProj;
    private final GroupNorm norm2;
    private final Conv2d conv2;
    private final Conv2d shortcut;
    private final int outChannels;
    private final float outputScale;

    /**
     * What backward needs; {@code out} is the block's output; tembAct is null without a time embedding; n1 and n2
     * hold SiLU(norm(·)) (the normalised values themselves are not kept).
     */
    public record Act(Tensor x, Tensor tembAct, GroupNorm.Act n1, Tensor h1, GroupNorm.Act n2, Tensor out) {}

    public ResnetBlock2D(String name, int in, int out, int tembChannels, int groups, float eps, float outputScale) {
        this.norm1 = new GroupNorm(name + ".norm1", in, groups, eps);
        this.conv1 = Conv2d.same(name + ".conv1", in, out, 3);
        this.timeEmbProj = tembChannels > 0 ? new Linear(name + ".time_emb_proj", tembChannels, out, true) : null;
        this.norm2 = new GroupNorm(name + ".norm2", out, groups, eps);
        this.conv2 = Conv2d.same(name + ".conv2", out, out, 3);
        this.shortcut = in != out ? new Conv2d(name + ".conv_shortcut", in, out, 1, 1, 0) : null;
        this.outChannels = out;
        this.outputScale = outputScale;
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        norm1.declare(shapes);
        conv1.declare(shapes);
        if (timeEmbProj != null) timeEmbProj.declare(shapes);
        norm2.declare(shapes);
        conv2.declare(shapes);
        if (shortcut != null) shortcut.declare(shapes);
    }

    /** x [n, in, h, w], tembAct [n, temb] (null without a time embedding) → out [n, out, h, w]. */
    public Act forward(Backend be, Weights p, Tensor x, Tensor tembAct) {
        int n = x.dim(0);
        GroupNorm.Act n1 = norm1.forwardSilu(be, p, x);
        Tensor h1 = timeEmbProj != null
                ? conv1.forwardSampleBias(be, p, n1.out(), timeEmbProj.forward(be, p, tembAct, n))
                : conv1.forward(be, p, n1.out());
        GroupNorm.Act n2 = norm2.forwardSilu(be, p, h1);
        Tensor out = conv2.forwardResidual(be, p, n2.out(), shortcut != null ? shortcut.forward(be, p, x) : x);
        if (outputScale != 1f) be.scale(out, out, 1f / outputScale, out.size());
        return new Act(x, tembAct, n1, h1, n2, out);
    }

    /** dx += ∂/∂x (dx may be null), dTembAct += ∂/∂tembAct, parameter gradients += theirs. */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dTembAct, Tensor dOut, Act a) {
        int n = a.x().dim(0);
        int hw = a.x().dim(2) * a.x().dim(3);
        Tensor d = dOut;
        if (outputScale != 1f) {
            d = be.zeros(dOut.shape());
            be.scale(d, dOut, 1f / outputScale, d.size());
        }
        // main branch, last layer first
        Tensor ds2 = be.zeros(a.n2().out().shape());
        conv2.backward(be, p, g, ds2, d, a.n2().out());
        Tensor dh1 = be.zeros(a.h1().shape());
        norm2.backwardSilu(be, p, g, dh1, ds2, a.h1(), a.n2());
        if (timeEmbProj != null) {
            Tensor dt = be.zeros(n, outChannels);
            be.sumChannelBias(dt, dh1, n, outChannels, hw);
            timeEmbProj.backward(be, p, g, dTembAct, dt, a.tembAct(), n);
        }
        Tensor ds1 = be.zeros(a.n1().out().shape());
        conv1.backward(be, p, g, ds1, dh1, a.n1().out());
        norm1.backwardSilu(be, p, g, dx, ds1, a.x(), a.n1());
        // shortcut branch
        if (shortcut != null) {
            shortcut.backward(be, p, g, dx, d, a.x());
        } else if (dx != null) {
            be.axpy(dx, 1f, d, d.size());
        }
    }
}
