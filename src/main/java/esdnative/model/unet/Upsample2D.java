package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.nn.Conv2d;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * diffusers' Upsample2D with a conv: nearest-neighbour upsampling, then a 3×3 conv ({@code name.conv}). The target
 * size is the skip connection's that the next up block concatenates: twice the input's, except where an odd side
 * was halved rounding up, as diffusers does with {@code upsample_size}.
 */
public final class Upsample2D {
    private final Conv2d conv;
    private final int channels;

    public record Act(Tensor x, Tensor upsampled, Tensor out) {}

    public Upsample2D(String name, int channels) {
        this.conv = Conv2d.same(name + ".conv", channels, channels, 3);
        this.channels = channels;
    }

    public void declare(SequencedMap<String, int[]> shapes) { conv.declare(shapes); }

    /** x [n, c, h, w] → [n, c, 2h, 2w]. */
    public Act forward(Backend be, Weights p, Tensor x) {
        return forward(be, p, x, 2 * x.dim(2), 2 * x.dim(3));
    }

    /** x [n, c, h, w] → [n, c, outH, outW] (2h × 2w but where a skip's odd side asks for one less). */
    public Act forward(Backend be, Weights p, Tensor x, int outH, int outW) {
        int n = x.dim(0), h = x.dim(2), w = x.dim(3);
        Tensor up = be.zeros(n, channels, outH, outW);
        if (outH == 2 * h && outW == 2 * w) be.upsampleNearest2x(up, x, n * channels, h, w);
        else NearestResize.forward(be, up, x);
        return new Act(x, up, conv.forward(be, p, up));
    }

    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dOut, Act a) {
        int n = a.x().dim(0), h = a.x().dim(2), w = a.x().dim(3);
        try (Scope scope = be.openScope()) { // the upsampled input's gradient is recycled once dx has its share
            Tensor dUp = be.zeros(a.upsampled().shape());
            conv.backward(be, p, g, dUp, dOut, a.upsampled());
            if (dUp.dim(2) == 2 * h && dUp.dim(3) == 2 * w) be.upsampleNearest2xBackward(dx, dUp, n * channels, h, w);
            else NearestResize.backward(be, dx, dUp);
        }
    }
}
