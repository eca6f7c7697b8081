package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/** torch.nn.GroupNorm (affine) over NCHW: weight/bias [channels]. */
public record GroupNorm(String name, int channels, int groups, float eps) {

    /** What backward needs: the output, and each (sample, group)'s mean and 1/std. */
    public record Act(Tensor out, Tensor mean, Tensor rstd) {}

    public void declare(SequencedMap<String, int[]> shapes) {
        shapes.put(name + ".weight", new int[] {channels});
        shapes.put(name + ".bias", new int[] {channels});
    }

    public Act forward(Backend be, Weights p, Tensor x) {
        return normalise(be, p, x, false);
    }

    /** SiLU(GroupNorm(x)) in one op; the Act's out is the SiLU's output (the normalised values are not kept). */
    public Act forwardSilu(Backend be, Weights p, Tensor x) {
        return normalise(be, p, x, true);
    }

    private Act normalise(Backend be, Weights p, Tensor x, boolean silu) {
        int n = x.dim(0);
        Tensor out = be.zeros(x.shape());
        Tensor mean = be.zeros(n * groups);
        Tensor rstd = be.zeros(n * groups);
        Tensor weight = p.get(name + ".weight"), bias = p.get(name + ".bias");
        if (silu) be.groupNormSilu(out, mean, rstd, x, weight, bias, n, channels, spatial(x), groups, eps);
        else be.groupNorm(out, mean, rstd, x, weight, bias, n, channels, spatial(x), groups, eps);
        return new Act(out, mean, rstd);
    }

    /** The backward of {@link #forwardSilu}: dy is the gradient of its output; dx += ∂/∂x; dγ, dβ += theirs. */
    public void backwardSilu(Backend be, Weights p, Weights g, Tensor dx, Tensor dy, Tensor x, Act act) {
        be.groupNormSiluBackward(dx, Params.grad(g, name + ".weight"), Params.grad(g, name + ".bias"), dy, x,
                act.mean(), act.rstd(), p.get(name + ".weight"), p.get(name + ".bias"), x.dim(0), channels, spatial(x),
                groups, eps);
    }

    /** dx += ∂/∂x; dγ, dβ += theirs where present. */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dy, Tensor x, Act act) {
        be.groupNormBackward(dx, Params.grad(g, name + ".weight"), Params.grad(g, name + ".bias"), dy, x,
                act.mean(), act.rstd(), p.get(name + ".weight"), x.dim(0), channels, spatial(x), groups);
    }

    private static int spatial(Tensor x) {
        return (int) (x.size() / ((long) x.dim(0) * x.dim(1)));
    }
}
