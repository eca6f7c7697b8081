package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Rows of a convolution's column matrix, packed straight from the input without bounds checks per element.
 * col[(c, r, s), (oy, ox)] = x[c, oy·stride - pad + r, ox·stride - pad + s], 0 outside the input.
 * Two layouts: a row of col ({@link #row}, an instance per shape) from an NCHW plane, or for stride > 1 from the
 * plane split into its stride² phases ({@link #splitPhases}); and a row of colᵀ (one output pixel, all (r, s, c))
 * from a zero-bordered pixel-major copy of the input ({@link #toPaddedPixelMajor}, {@link #pixelRow}).
 */
final class Im2col {
    /** input floats below which the input is rearranged on the calling thread (a fork costs more). */
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
     * {@code plane} is where channel c of the sample starts in x (in its phase split when {@link #readsPhases}).
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
        // a block narrower than a row can lie wholly in the padding: then there is nothing to copy, from nowhere
        if (hi > lo) System.arraycopy(x, plane + col0 + lo + shift, dst, at + lo, hi - lo);
        Arrays.fill(dst, at + hi, at + width, 0f);
        int firstRow = -(col0 % w);   // j of ox = 0 in the output row holding col0
        for (int ox = 0; ox < Math.min(pad - ks, w); ox++) zeroColumn(dst, at, firstRow + ox, width);
        for (int ox = Math.max(w + pad - ks, 0); ox < w; ox++) zeroColumn(dst, at, firstRow + ox, width);
    }

    /** dst[at + j] = 0 at every output row's column j (mod w) in [0, width); j may start one row early. */
    private void zeroColumn(float[] dst, int at, int j, int width) {
        for (j = j < 0 ? j + w : j; j < width; j += w) dst[at + j] = 0f;
    }

    /**
     * Any stride and padding, per output row: zeros, a copy of the valid ox, zeros. With stride 1 the source is the
     * plane; with a larger stride it is the phase plane (a, b) of {@link #splitPhases} that holds every
     * iy = i·stride + a, ix = j·stride + b, so that each output row is again a contiguous run.
     */
    private void byOutputRows(float[] x, int plane, int kr, int ks, int col0, int width, float[] dst, int at) {
        // iy = (oy + di)·stride + a, ix = (ox + dj)·stride + b
        int a = Math.floorMod(kr - pad, stride), di = Math.floorDiv(kr - pad, stride);
        int b = Math.floorMod(ks - pad, stride), dj = Math.floorDiv(ks - pad, stride);
        int rows = phaseLength(h, a), cols = phaseLength(w, b);
        int src = plane + phaseStart(a, b);
        // output columns whose j = ox + dj lies in [0, cols)
        int oxFrom = Math.clamp(-dj, 0, ow), oxTo = Math.clamp(cols - dj, oxFrom, ow);
        int end = col0 + width;
        for (int p = col0; p < end; ) {
            int oy = p / ow, first = p % ow, last = Math.min(ow, first + end - p);
            int j = at + p - col0 - first;   // dst index of (oy, ox = 0)
            int i = oy + di;
            if (i < 0 || i >= rows) {
                Arrays.fill(dst, j + first, j + last, 0f);
            } else {
                int from = Math.clamp(oxFrom, first, last), to = Math.clamp(oxTo, from, last);
                Arrays.fill(dst, j + first, j + from, 0f);
                if (to > from) System.arraycopy(x, src + i * cols + dj + from, dst, j + from, to - from);
                Arrays.fill(dst, j + to, j + last, 0f);
            }
            p += last - first;
        }
    }

    /** whether {@link #row} reads the input through {@link #splitPhases} */
    boolean readsPhases() { return stride > 1; }

    /** indices i·stride + phase below length */
    private int phaseLength(int length, int phase) { return (length - phase + stride - 1) / stride; }

    /** where phase plane (a, b) starts within a channel's h·w floats: phase rows a' < a, then columns b' < b. */
    private int phaseStart(int a, int b) {
        int start = 0;
        for (int a2 = 0; a2 < a; a2++) start += phaseLength(h, a2) * w;
        for (int b2 = 0; b2 < b; b2++) start += phaseLength(h, a) * phaseLength(w, b2);
        return start;
    }

    /**
     * xs = x (NCHW at xOff, n·c planes) with each h × w plane rearranged into its stride² phase planes, (a, b) holding
     * x[iy = i·stride + a, ix = j·stride + b] row-major; see {@link #byOutputRows}.
     */
    void splitPhases(float[] x, int xOff, int planes, float[] xs) {
        IntConsumer plane = pl -> {
            int src = xOff + pl * h * w, dst = pl * h * w;
            for (int a = 0; a < stride; a++) {
                for (int b = 0; b < stride; b++) {
                    int rows = phaseLength(h, a), cols = phaseLength(w, b);
                    for (int i = 0; i < rows; i++) {
                        int from = src + (i * stride + a) * w + b;
                        for (int jj = 0; jj < cols; jj++) xs[dst + jj] = x[from + jj * stride];
                        dst += cols;
                    }
                }
            }
        };
        if ((long) planes * h * w < SPLIT_MIN_FLOATS) {
            for (int pl = 0; pl < planes; pl++) plane.accept(pl);
        } else {
            Parallel.forEach(planes, plane);
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
