package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.function.IntConsumer;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * 2-D convolution (https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html) as matrix products over the
 * column matrix col[(c, r, s), (oy, ox)] = in[c, oy·stride - pad + r, ox·stride - pad + s] (0 outside), whose
 * rows {@link ConvProduct} packs straight from the input ({@link Im2col}):
 * <ul>
 *   <li>forward: out[k, :] = bias[k] + weight[k, (c, r, s)] · col, with every sample's pixels as columns;</li>
 *   <li>backward data, stride 1 with a square R × R kernel and pad < R: the correlation of dOut with the weights
 *       flipped and transposed (weight'[c, k, r, s] = weight[k, c, R-1-r, R-1-s], padding R-1-pad), accumulated
 *       into dIn; otherwise weightᵀ · dOut into a column buffer folded back onto the pixels (col2im);
 *   <li>backward weight: dWeight[k, (r, s, c)] += Σ over samples and pixels of dOut[k, pixel] · colᵀ[pixel, (r, s, c)],
 *       colᵀ rows packed from a pixel-major copy of the input, each k-block's sums added back permuted to (c, r, s).</li>
 * </ul>
 */
final class ConvOps {
    /** dOut elements below which the bias gradient is summed on the calling thread. */
    private static final long BIAS_SPLIT_MIN = 1L << 16;

    // buffers for the input split into stride phases (forward), the column matrix (backward data by col2im) and the
    // pixel-major input (backward weight); a pool rather than per-thread: a caller may be re-entered while in use
    private static final ConcurrentLinkedDeque<float[]> BUFFERS = new ConcurrentLinkedDeque<>();

    private ConvOps() {}

    /** out = conv(in, weight) + bias (bias may be null). */
    static void forward(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape sh) {
        float[] w = array(weight);
        int wOff = offset(weight), crs = sh.c() * sh.r() * sh.s();
        StripPacker weights = (row0, rows, p0, kc, aPack) -> {
            for (int r = 0; r < rows; r++) {
                int src = wOff + (row0 + r) * crs + p0;
                for (int p = 0; p < kc; p++) aPack[p * GemmKernel.MR + r] = w[src + p];
            }
        };
        Im2col im2col = new Im2col(sh);
        float[] x = array(in), phases = null;
        int xOff = offset(in);
        if (im2col.readsPhases()) {
            phases = acquire((long) sh.n() * sh.c() * sh.h() * sh.w());
            im2col.splitPhases(x, xOff, sh.n() * sh.c(), phases);
            x = phases;
            xOff = 0;
        }
        new Correlation(sh, im2col, x, xOff, weights, array(out), offset(out), false,
                bias == null ? null : array(bias), bias == null ? 0 : offset(bias)).run();
        if (phases != null) BUFFERS.push(phases);
    }

    /** dIn += convᵀ(dOut, weight). */
    static void backwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape sh) {
        if (sh.stride() == 1 && sh.r() == sh.s() && sh.pad() < sh.r()) {
            backwardDataAsCorrelation(dIn, dOut, weight, sh);
        } else {
            backwardDataByCol2im(dIn, dOut, weight, sh);
        }
    }

    /**
     * dIn[c, iy, ix] += Σ_{k, r, s} weight[k, c, R-1-r, R-1-s] · dOut[k, iy - pad' + r, ix - pad' + s] with
     * pad' = R-1-pad: a stride-1 correlation of dOut (k channels) whose output is exactly h × w.
     */
    private static void backwardDataAsCorrelation(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape sh) {
        Conv2dShape flipped = new Conv2dShape(sh.n(), sh.k(), sh.outH(), sh.outW(), sh.c(), sh.r(), sh.s(), 1,
                sh.r() - 1 - sh.pad());
        float[] w = array(weight);
        int wOff = offset(weight), rs = sh.r() * sh.s(), c = sh.c();
        // row ch, column (k, j) of the flipped weights = weight[k, ch, rs - 1 - j]: with j = r·R + s the taps
        // (R-1-r, R-1-s) are the index rs - 1 - j. A column's 4 rows are rs apart; a partial strip repeats its last
        // row in the unused lanes (their sums are never stored), so every column is the same 4 loads.
        StripPacker weights = (row0, rows, p0, kc, aPack) -> {
            int r1 = Math.min(1, rows - 1) * rs, r2 = Math.min(2, rows - 1) * rs, r3 = Math.min(3, rows - 1) * rs;
            for (int p = 0, k = p0 / rs, j = p0 % rs; p < kc; p++) {
                int src = wOff + (k * c + row0) * rs + rs - 1 - j, at = p * GemmKernel.MR;
                aPack[at] = w[src];
                aPack[at + 1] = w[src + r1];
                aPack[at + 2] = w[src + r2];
                aPack[at + 3] = w[src + r3];
                if (++j == rs) {
                    j = 0;
                    k++;
                }
            }
        };
        new Correlation(flipped, new Im2col(flipped), array(dOut), offset(dOut), weights, array(dIn), offset(dIn), true,
                null, 0).run();
    }

    /** dIn += col2im(weightᵀ · dOut), per sample: any stride and padding. */
    private static void backwardDataByCol2im(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape sh) {
        float[] dx = array(dIn), dy = array(dOut), w = array(weight);
        int dxOff = offset(dIn), dyOff = offset(dOut), wOff = offset(weight);
        int ohw = sh.outH() * sh.outW(), crs = sh.c() * sh.r() * sh.s(), chw = sh.c() * sh.h() * sh.w();
        float[] dcol = acquire((long) crs * ohw);
        for (int n = 0; n < sh.n(); n++) {
            Gemm.sgemm(true, false, crs, ohw, sh.k(), 1f, w, wOff, crs, dy, dyOff + n * sh.k() * ohw, ohw,
                    0f, dcol, 0, ohw);
            col2imAdd(dx, dxOff + n * chw, dcol, sh);
        }
        BUFFERS.push(dcol);
    }

    /** dWeight += Σ_n dOut[n] · col[n]ᵀ; dBias[k] += Σ dOut[:, k]. */
    static void backwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape sh) {
        float[] dy = array(dOut);
        int dyOff = offset(dOut), ohw = sh.outH() * sh.outW();
        if (dWeight != null) {
            float[] xp = acquire(Im2col.paddedPixelMajorSize(sh));
            Im2col.toPaddedPixelMajor(array(in), offset(in), sh, xp);
            new WeightGradient(sh, xp, dy, dyOff, array(dWeight), offset(dWeight)).run();
            BUFFERS.push(xp);
        }
        if (dBias != null) {
            float[] db = array(dBias);
            int dbOff = offset(dBias);
            IntConsumer sumRow = k -> {
                double sum = 0;
                for (int n = 0; n < sh.n(); n++) {
                    int row = dyOff + (n * sh.k() + k) * ohw;
                    for (int p = 0; p < ohw; p++) sum += dy[row + p];
                }
                db[dbOff + k] += (float) sum;
            };
            if ((long) sh.n() * sh.k() * ohw < BIAS_SPLIT_MIN) {
                for (int k = 0; k < sh.k(); k++) sumRow.accept(k);
            } else {
                Parallel.forEach(sh.k(), sumRow);
            }
        }
    }

    /** Packs a strip of the weights as {@link ConvProduct#packStrip} (one sample's A is every sample's). */
    @FunctionalInterface
    private interface StripPacker {
        void pack(int row0, int rows, int p0, int kc, float[] aPack);
    }

    /**
     * out[n, k, :] = (accumulate ? out[n, k, :] : bias[k] or 0) + Σ_{(c, r, s)} A[k, (c, r, s)] · col_n[(c, r, s), :]
     * for a correlation of shape sh (out [n, k, outH·outW], col_n from x [n, c, h, w]), with A from a
     * {@link StripPacker}: one product whose columns are the samples' output pixels side by side (wider rows for the
     * kernel when planes are small).
     */
    private static final class Correlation extends ConvProduct {
        private final Conv2dShape sh;
        private final Im2col im2col;
        private final float[] x, out, bias;
        private final int xOff, outOff, biasOff, pixels;
        private final StripPacker weights;
        private final boolean accumulate;

        Correlation(Conv2dShape sh, Im2col im2col, float[] x, int xOff, StripPacker weights, float[] out, int outOff,
                    boolean accumulate, float[] bias, int biasOff) {
            super(sh.k(), sh.n() * sh.outH() * sh.outW(), sh.c() * sh.r() * sh.s());
            this.sh = sh;
            this.im2col = im2col;
            this.pixels = sh.outH() * sh.outW();
            this.x = x;
            this.xOff = xOff;
            this.weights = weights;
            this.out = out;
            this.outOff = outOff;
            this.accumulate = accumulate;
            this.bias = bias;
            this.biasOff = biasOff;
        }

        @Override
        void packStrip(int row0, int rows, int p0, int kc, float[] aPack) {
            weights.pack(row0, rows, p0, kc, aPack);
        }

        /** panel rows p0 .. p0 + kc - 1 are the col rows (c, kr, ks), in that order, a piece per sample. */
        @Override
        void packPanel(int p0, int kc, int col0, int width, float[][] panel) {
            int r = sh.r(), s = sh.s(), c = p0 / (r * s), kr = p0 / s % r, ks = p0 % s, hw = sh.h() * sh.w();
            for (int p = 0; p < kc; p++) {
                for (int col = col0, end = col0 + width; col < end; ) {
                    int sample = col / pixels, pixel = col % pixels, run = Math.min(end - col, pixels - pixel);
                    im2col.row(x, xOff + (sample * sh.c() + c) * hw, kr, ks, pixel, run, panel[p], col - col0);
                    col += run;
                }
                if (++ks == s) {
                    ks = 0;
                    if (++kr == r) {
                        kr = 0;
                        c++;
                    }
                }
            }
        }

        @Override
        void loadRow(int row, int col0, int width, float[] acc, boolean firstBlock) {
            if (accumulate || !firstBlock) {
                for (int col = col0, end = col0 + width; col < end; ) {
                    int pixel = col % pixels, run = Math.min(end - col, pixels - pixel);
                    System.arraycopy(out, outAt(row, col), acc, col - col0, run);
                    col += run;
                }
            } else {
                Arrays.fill(acc, 0, width, bias == null ? 0f : bias[biasOff + row]);
            }
        }

        @Override
        void storeRow(int row, int col0, int width, float[] acc) {
            for (int col = col0, end = col0 + width; col < end; ) {
                int pixel = col % pixels, run = Math.min(end - col, pixels - pixel);
                System.arraycopy(acc, col - col0, out, outAt(row, col), run);
                col += run;
            }
        }

        /** where out[sample, row, pixel] is for column col = sample·pixels + pixel */
        private int outAt(int row, int col) { return outOff + (col / pixels * m + row) * pixels + col % pixels; }
    }

    /**
     * dWeight[k, (c, r, s)] += Σ_{(n, oy, ox)} dOut[n, k, oy, ox] · colᵀ[(n, oy, ox), (r, s, c)]: one product over
     * all samples, columns in (r, s, c) order so each row of colᵀ is s·c-long runs of the pixel-major input xp.
     */
    private static final class WeightGradient extends ConvProduct {
        private final Conv2dShape sh;
        private final float[] xp, dy, dw;
        private final int dyOff, dwOff, ohw, rs;

        WeightGradient(Conv2dShape sh, float[] xp, float[] dy, int dyOff, float[] dw, int dwOff) {
            super(sh.k(), sh.r() * sh.s() * sh.c(), sh.n() * sh.outH() * sh.outW());
            this.sh = sh;
            this.xp = xp;
            this.dy = dy;
            this.dyOff = dyOff;
            this.dw = dw;
            this.dwOff = dwOff;
            this.ohw = sh.outH() * sh.outW();
            this.rs = sh.r() * sh.s();
        }

        /** aPack[p·MR + r] = dOut[sample, row0 + r, pixel] for reduction index p0 + p = sample·ohw + pixel. */
        @Override
        void packStrip(int row0, int rows, int p0, int kc, float[] aPack) {
            for (int p = p0; p < p0 + kc; ) {
                int sample = p / ohw, pixel = p % ohw, run = Math.min(p0 + kc - p, ohw - pixel);
                int at = (p - p0) * GemmKernel.MR;
                for (int r = 0; r < rows; r++) {
                    int src = dyOff + (sample * sh.k() + row0 + r) * ohw + pixel;
                    for (int i = 0; i < run; i++) aPack[at + i * GemmKernel.MR + r] = dy[src + i];
                }
                p += run;
            }
        }

        /** panel rows are the pixels p0 .. p0 + kc - 1 of all samples, in order. */
        @Override
        void packPanel(int p0, int kc, int col0, int width, float[][] panel) {
            int ow = sh.outW();
            for (int p = 0; p < kc; p++) {
                int pixel = (p0 + p) % ohw;
                Im2col.pixelRow(xp, sh, (p0 + p) / ohw, pixel / ow, pixel % ow, col0, width, panel[p]);
            }
        }

        /** a column block's columns (r, s, c) are spread over the whole row of dWeight (c, r, s) */
        @Override
        boolean storesSpanRows() { return rs > 1; }

        /** every k-block's sums start from zero and are added to dWeight by storeRow (one permuted pass). */
        @Override
        void loadRow(int row, int col0, int width, float[] acc, boolean firstBlock) {
            Arrays.fill(acc, 0, width, 0f);
        }

        /** dWeight[row, (c, r, s)] += acc[j] for column col0 + j = (r·s + s)·channels + c. */
        @Override
        void storeRow(int row, int col0, int width, float[] acc) {
            int base = dwOff + row * n, channels = sh.c();   // a row of dWeight holds n = c·r·s floats
            if (rs == 1) {
                for (int j = 0; j < width; j++) dw[base + col0 + j] += acc[j];   // 1×1: no permutation
                return;
            }
            for (int col = col0, end = col0 + width; col < end; ) {
                int at = base + col / channels, c0 = col % channels, run = Math.min(channels - c0, end - col);
                for (int c = 0; c < run; c++) dw[at + (c0 + c) * rs] += acc[col - col0 + c];
                col += run;
            }
        }
    }

    /** A pooled buffer of at least {@code size} floats (contents undefined); give it back with BUFFERS.push. */
    private static float[] acquire(long size) {
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("conv buffer of " + size + " floats");
        float[] a = BUFFERS.poll();
        return a != null && a.length >= size ? a : new float[(int) size];
    }

    /** dx[c, h, w] (from dxOff) += the columns folded back; each channel summed in a fixed order by one thread. */
    private static void col2imAdd(float[] dx, int dxOff, float[] dcol, Conv2dShape sh) {
        int oh = sh.outH(), ow = sh.outW(), ohw = oh * ow;
        int h = sh.h(), w = sh.w(), r = sh.r(), s = sh.s(), stride = sh.stride(), pad = sh.pad();
        Parallel.forEach(sh.c(), ci -> {
            int plane = dxOff + ci * h * w;
            for (int kr = 0; kr < r; kr++) {
                for (int ks = 0; ks < s; ks++) {
                    int colRow = ((ci * r + kr) * s + ks) * ohw;
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * stride - pad + kr;
                        if (iy < 0 || iy >= h) continue;
                        int dst = plane + iy * w;
                        int src = colRow + oy * ow;
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * stride - pad + ks;
                            if (ix >= 0 && ix < w) dx[dst + ix] += dcol[src + ox];
                        }
                    }
                }
            }
        });
    }
}
