package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * torch.nn.Conv2d with a square kernel and bias: weight [out, in, k, k] ({@code name.weight}), bias [out].
 * Inputs and outputs are NCHW tensors; the spatial size is read from the input's shape.
 */
public record Conv2d(String name, int in, int out, int kernel, int stride, int pad) {

    /** A stride-1 convolution that keeps the spatial size (padding (k-1)/2). */
    public static Conv2d same(String name, int in, int out, int kernel) {
        return new Conv2d(name, in, out, kernel, 1, (kernel - 1) / 2);
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        shapes.put(name + ".weight", new int[] {out, in, kernel, kernel});
        shapes.put(name + ".bias", new int[] {out});
    }

    public Conv2dShape shape(Tensor x) {
        return new Conv2dShape(x.dim(0), in, x.dim(2), x.dim(3), out, kernel, kernel, stride, pad);
    }

    /** x [n, in, h, w] → [n, out, outH, outW]. */
    public Tensor forward(Backend be, Weights p, Tensor x) {
        Conv2dShape s = shape(x);
        Tensor y = be.zeros(s.n(), out, s.outH(), s.outW());
        be.conv2d(y, x, p.get(name + ".weight"), p.get(name + ".bias"), s);
        return y;
    }

    /** x [n, in, h, w] → conv(x) + residual [n, out, outH, outW] (a residual connection; its backward is dx's). */
    public Tensor forwardResidual(Backend be, Weights p, Tensor x, Tensor residual) {
        Conv2dShape s = shape(x);
        Tensor y = be.zeros(s.n(), out, s.outH(), s.outW());
        be.conv2dResidual(y, x, p.get(name + ".weight"), p.get(name + ".bias"), residual, s);
        return y;
    }

    /** x [n, in, h, w] → conv(x) + sampleBias[n, out] broadcast over the pixels (the ResNet time embedding). */
    public Tensor forwardSampleBias(Backend be, Weights p, Tensor x, Tensor sampleBias) {
        Conv2dShape s = shape(x);
        Tensor y = be.zeros(s.n(), out, s.outH(), s.outW());
        be.conv2dSampleBias(y, x, p.get(name + ".weight"), p.get(name + ".bias"), sampleBias, s);
        return y;
    }

    /** dx += convᵀ(dy) (dx may be null); dW, db += their gradients where present. */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dy, Tensor x) {
        Conv2dShape s = shape(x);
        if (dx != null) be.conv2dBackwardData(dx, dy, p.get(name + ".weight"), s);
        Tensor dw = Params.grad(g, name + ".weight");
        Tensor db = Params.grad(g, name + ".bias");
        if (dw != null || db != null) be.conv2dBackwardWeight(dw, db, dy, x, s);
    }
}
