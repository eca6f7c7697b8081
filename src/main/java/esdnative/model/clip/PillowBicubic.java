package esdnative.model.clip;

/**
 * Pillow's {@code Image.resize(size, BICUBIC)} of an 8-bit image (libImaging/Resample.c, Pillow 9.4), reproduced
 * bit for bit: separable convolution with the a = −0.5 cubic kernel widened by the downscale factor, weights
 * normalised in double and rounded to 22-bit fixed point, the horizontal pass first with its result rounded and
 * clipped to uint8, then the vertical pass. A pass whose size does not change is skipped.
 */
public final class PillowBicubic {
    private static final int PRECISION_BITS = 32 - 8 - 2;
    private static final double SUPPORT = 2.0;

    private PillowBicubic() {}

    /** The cubic convolution kernel with a = −0.5, in Pillow's operation order. */
    static double cubic(double x) {
        final double a = -0.5;
        x = Math.abs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /** Per output index: the first input index, the tap count and the fixed-point weights. */
    record Taps(int[] first, int[] count, int[][] weights) {}

    /** Resampling coefficients for {@code in} → {@code out} samples along one axis. */
    static Taps taps(int in, int out) {
        double scale = (double) in / out;
        double filterScale = Math.max(scale, 1.0);
        double support = SUPPORT * filterScale;
        int[] first = new int[out], count = new int[out];
        int[][] weights = new int[out][];
        for (int xx = 0; xx < out; xx++) {
            double center = (xx + 0.5) * scale;
            int xmin = Math.max(0, (int) (center - support + 0.5));
            int xmax = Math.min(in, (int) (center + support + 0.5)) - xmin;
            double[] k = new double[xmax];
            double sum = 0;
            for (int x = 0; x < xmax; x++) {
                k[x] = cubic((x + xmin - center + 0.5) / filterScale);
                sum += k[x];
            }
            int[] fixed = new int[xmax];
            for (int x = 0; x < xmax; x++) {
                double w = sum != 0 ? k[x] / sum : k[x];
                // round half away from zero, as Pillow's normalize_coeffs_8bpc
                fixed[x] = (int) (w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
            }
            first[xx] = xmin;
            count[xx] = xmax;
            weights[xx] = fixed;
        }
        return new Taps(first, count, weights);
    }

    /** The image resized to {@code width} × {@code height}; the same size gives an exact copy. */
    public static RgbImage resize(RgbImage img, int width, int height) {
        RgbImage out = img;
        if (width != img.width()) out = horizontal(out, width);
        if (height != img.height()) out = vertical(out, height);
        return out == img ? new RgbImage(img.width(), img.height(), img.rgb().clone()) : out;
    }

    private static RgbImage horizontal(RgbImage in, int width) {
        Taps t = taps(in.width(), width);
        byte[] out = new byte[in.height() * width * 3];
        for (int y = 0; y < in.height(); y++) {
            for (int xx = 0; xx < width; xx++) {
                for (int c = 0; c < 3; c++) {
                    int acc = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < t.count()[xx]; x++) acc += in.get(t.first()[xx] + x, y, c) * t.weights()[xx][x];
                    out[(y * width + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        return new RgbImage(width, in.height(), out);
    }

    private static RgbImage vertical(RgbImage in, int height) {
        Taps t = taps(in.height(), height);
        byte[] out = new byte[height * in.width() * 3];
        for (int yy = 0; yy < height; yy++) {
            for (int x = 0; x < in.width(); x++) {
                for (int c = 0; c < 3; c++) {
                    int acc = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < t.count()[yy]; y++) acc += in.get(x, t.first()[yy] + y, c) * t.weights()[yy][y];
                    out[(yy * in.width() + x) * 3 + c] = clip8(acc);
                }
            }
        }
        return new RgbImage(in.width(), height, out);
    }

    /** acc >> 22 (arithmetic) clamped to 0..255. */
    private static byte clip8(int acc) {
        return (byte) Math.clamp(acc >> PRECISION_BITS, 0, 255);
    }
}
