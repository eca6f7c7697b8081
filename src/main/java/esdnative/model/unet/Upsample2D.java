package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/** diffusers' Upsample2D with a conv: nearest-neighbour 2× upsampling, then a 3×3 conv ({@code name.conv}). */
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
        int n = x.dim(0), h = x.dim(2), w = x.dim(3);
        Tensor up = be.zeros(n, channels, 2 * h, 2 * w);
        be.upsampleNearest2x(up, x, n * channels, h, w);
        return new Act(x, up, conv.forward(be, p, up));
    }

    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dOut, Act a) {
        int n = a.x().dim(0), h = a.x().dim(2), w = a.x().dim(3);
        Tensor dUp = be.zeros(a.upsampled().shape());
        conv.backward(be, p, g, dUp, dOut, a.upsampled());
        be.upsampleNearest2xBackward(dx, dUp, n * channels, h, w);
    }
}
