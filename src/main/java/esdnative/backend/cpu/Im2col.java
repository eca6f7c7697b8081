package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Rows of a convolution's column matrix, packed straight from the input without bounds checks per element.
 * col[(c, r, s), (oy, ox)] = x[c, oy·stride - pad + r, ox·stride - pad + s], 0 outside the input.
 * Two layouts: a row of col from an NCHW plane ({@link #row}, an instance per shape), and a row of colᵀ (one output
 * pixel, all (r, s, c)) from a zero-bordered pixel-major copy of the input ({@link #toPaddedPixelMajor},
 * {@link #pixelRow}).
 */
final class Im2col {
    /** input floats below which the pixel-major copy is made on the calling thread (a fork costs more). */
    private static final long SPLIT_MIN_FLOATS = 1L << 18;

    private final int h, w, ow, stride, pad;
    /** stride 1 and output rows as wide as input rows: a row of col is the plane shifted */
    private final boolean shiftedPlane;

    /** The packing of col rows for convolutions of shape sh. */
    Im2col(Conv2dShape sh) {
        h = sh.h();
        w = sh.w();
        ow = sh.outW();
        stride = sh.stride();
        pad = sh.pad();
        shiftedPlane = stride == 1 && ow == w;
    }

    /**
     * dst[at + j] = col[(c, kr, ks), col0 + j] for j < width (col0 + j an output pixel of one sample), where
     * {@code plane} is where channel c of the sample starts.
     */
    void row(float[] x, int plane, int kr, int ks, int col0, int width, float[] dst, int at) {
        if (shiftedPlane) {
            shiftedPlane(x, plane, kr, ks, col0, width, dst, at);
        } else {
            byOutputRows(x, plane, kr, ks, col0, width, dst, at);
        }
    }

    /**
     * The plane shifted by (kr - pad)·w + ks - pad: one copy, zero where the shift leaves the plane; then the
     * columns whose ix wrapped into a neighbouring row (ox < pad - ks or ox ≥ w + pad - ks) are zeroed.
     */
    private void shiftedPlane(float[] x, int plane, int kr, int ks, int col0, int width, float[] dst, int at) {
        int shift = (kr - pad) * w + ks - pad;
        int lo = Math.clamp(-shift - col0, 0, width), hi = Math.clamp(h * w - shift - col0, lo, width);
        Arrays.fill(dst, at, at + lo, 0f);
        System.arraycopy(x, plane + col0 + lo + shift, dst, at + lo, hi - lo);
        Arrays.fill(dst, at + hi, at + width, 0f);
        int firstRow = -(col0 % w);   // j of ox = 0 in the output row holding col0
        for (int ox = 0; ox < Math.min(pad - ks, w); ox++) zeroColumn(dst, at, firstRow + ox, width);
        for (int ox = Math.max(w + pad - ks, 0); ox < w; ox++) zeroColumn(dst, at, firstRow + ox, width);
    }

    /** dst[at + j] = 0 at every output row's column j (mod w) in [0, width); j may start one row early. */
    private void zeroColumn(float[] dst, int at, int j, int width) {
        for (j = j < 0 ? j + w : j; j < width; j += w) dst[at + j] = 0f;
    }

    /** Any stride and padding: per output row, zeros, a copy (a gather for stride > 1) of the valid ox, zeros. */
    private void byOutputRows(float[] x, int plane, int kr, int ks, int col0, int width, float[] dst, int at) {
        // output columns whose ix = ox·stride - pad + ks lies in [0, w)
        int oxFrom = Math.clamp(Math.ceilDiv(pad - ks, stride), 0, ow);
        int oxTo = Math.clamp(Math.floorDiv(w - 1 + pad - ks, stride) + 1, oxFrom, ow);
        int end = col0 + width;
        for (int p = col0; p < end; ) {
            int oy = p / ow, first = p % ow, last = Math.min(ow, first + end - p);
            int j = at + p - col0 - first;   // dst index of (oy, ox = 0)
            int iy = oy * stride - pad + kr;
            if (iy < 0 || iy >= h) {
                Arrays.fill(dst, j + first, j + last, 0f);
            } else {
                int from = Math.clamp(oxFrom, first, last), to = Math.clamp(oxTo, from, last);
                Arrays.fill(dst, j + first, j + from, 0f);
                int src = plane + iy * w - pad + ks;
                if (stride == 1) {
                    System.arraycopy(x, src + from, dst, j + from, to - from);
                } else {
                    for (int ox = from; ox < to; ox++) dst[j + ox] = x[src + ox * stride];
                }
                Arrays.fill(dst, j + to, j + last, 0f);
            }
            p += last - first;
        }
    }

    /** Floats {@link #toPaddedPixelMajor} writes: n · (h + 2·pad) · (w + 2·pad) · c. */
    static long paddedPixelMajorSize(Conv2dShape sh) {
        return (long) sh.n() * (sh.h() + 2 * sh.pad()) * (sh.w() + 2 * sh.pad()) * sh.c();
    }

    /**
     * xp[n, pad + iy, pad + ix, c] = x[n, c, iy, ix] (NCHW at xOff), with a zero border pad wide. A transpose,
     * 8 channels at a time so each pixel's 8 consecutive writes fill its cache line while 8 planes stream in.
     */
    static void toPaddedPixelMajor(float[] x, int xOff, Conv2dShape sh, float[] xp) {
        int c = sh.c(), h = sh.h(), w = sh.w(), hw = h * w, pad = sh.pad(), wp = w + 2 * pad, hp = h + 2 * pad;
        Arrays.fill(xp, 0, (int) paddedPixelMajorSize(sh), 0f);
        IntConsumer inputRow = row -> {   // row = n·h + iy
            int n = row / h, iy = row % h;
            int dstRow = ((n * hp + iy + pad) * wp + pad) * c;
            int srcRow = (n * c * h + iy) * w + xOff;
            int ch = 0;
            for (; ch + 8 <= c; ch += 8) {
                int src = srcRow + ch * hw;
                for (int ix = 0, dst = dstRow + ch; ix < w; ix++, dst += c) {
                    xp[dst] = x[src + ix];
                    xp[dst + 1] = x[src + hw + ix];
                    xp[dst + 2] = x[src + 2 * hw + ix];
                    xp[dst + 3] = x[src + 3 * hw + ix];
                    xp[dst + 4] = x[src + 4 * hw + ix];
                    xp[dst + 5] = x[src + 5 * hw + ix];
                    xp[dst + 6] = x[src + 6 * hw + ix];
                    xp[dst + 7] = x[src + 7 * hw + ix];
                }
            }
            for (; ch < c; ch++) {
                int src = srcRow + ch * hw;
                for (int ix = 0; ix < w; ix++) xp[dstRow + ix * c + ch] = x[src + ix];
            }
        };
        if ((long) sh.n() * c * hw < SPLIT_MIN_FLOATS) {
            for (int row = 0; row < sh.n() * h; row++) inputRow.accept(row);
        } else {
            Parallel.forEach(sh.n() * h, inputRow);
        }
    }

    /**
     * dst[j] = colᵀ[(n, oy, ox), col0 + j] for j < width with the columns ordered (r, s, c), read from xp (see
     * {@link #toPaddedPixelMajor}): for each r the s·c values are one contiguous run of xp.
     */
    static void pixelRow(float[] xp, Conv2dShape sh, int n, int oy, int ox, int col0, int width, float[] dst) {
        int c = sh.c(), wp = sh.w() + 2 * sh.pad(), hp = sh.h() + 2 * sh.pad(), run = sh.s() * c;
        int base = ((n * hp + oy * sh.stride()) * wp + ox * sh.stride()) * c;
        int end = col0 + width;
        for (int r = col0 / run; r * run < end; r++) {
            int from = Math.max(col0, r * run), to = Math.min(end, (r + 1) * run);
            System.arraycopy(xp, base + r * wp * c + from - r * run, dst, from - col0, to - from);
        }
    }
}
