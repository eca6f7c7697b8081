package esdnative.tensor;

/**
 * Shapes of one 2-D convolution, NCHW: input [n, c, h, w], weight [k, c, r, s], output [n, k, outH, outW],
 * with the same stride and zero padding on both axes (all the SD UNet and VAE need).
 */
public record Conv2dShape(int n, int c, int h, int w, int k, int r, int s, int stride, int pad) {
    public Conv2dShape {
        if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || k <= 0 || r <= 0 || s <= 0 || stride <= 0 || pad < 0) {
            throw new IllegalArgumentException("bad conv shape " + this);
        }
        if (h + 2 * pad < r || w + 2 * pad < s) throw new IllegalArgumentException("kernel larger than padded input: " + this);
    }

    public int outH() { return (h + 2 * pad - r) / stride + 1; }

    public int outW() { return (w + 2 * pad - s) / stride + 1; }

    /** Multiply-adds of the forward pass times two. */
    public double flops() { return 2.0 * n * k * outH() * outW() * c * r * s; }
}
