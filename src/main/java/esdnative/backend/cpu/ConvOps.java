package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.concurrent.ConcurrentLinkedDeque;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * 2-D convolution as im2col + GEMM, one sample at a time (https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html).
 * col[(c, r, s), (oy, ox)] = in[c, oy·stride - pad + r, ox·stride - pad + s] (0 outside), so that
 * out[k, (oy, ox)] = weight[k, (c, r, s)] · col. A 1×1, stride-1, unpadded convolution uses the input as col.
 * Column buffers are pooled (a 3×3 conv of SD's first level needs 47 MB of them), and products too small for
 * {@link Gemm} to split are cut into column slices here so that both cores work.
 */
final class ConvOps {
    /** columns per slice when a product is cut (a function of the shape only: determinism). */
    private static final int SLICE = 128;

    // column buffers; a pool rather than per-thread: a caller may be re-entered while its buffer is in use
    private static final ConcurrentLinkedDeque<float[]> COLS = new ConcurrentLinkedDeque<>();

    private ConvOps() {}

    static void forward(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape sh) {
        float[] o = array(out), x = array(in), w = array(weight);
        int oOff = offset(out), xOff = offset(in), wOff = offset(weight);
        int ohw = sh.outH() * sh.outW(), crs = sh.c() * sh.r() * sh.s(), chw = sh.c() * sh.h() * sh.w();
        boolean direct = isPointwise(sh);
        float[] col = direct ? null : acquire((long) crs * ohw);
        for (int n = 0; n < sh.n(); n++) {
            int outN = oOff + n * sh.k() * ohw;
            if (direct) {
                sgemm(false, false, sh.k(), ohw, sh.c(), w, wOff, sh.c(), x, xOff + n * chw, ohw, 0f, o, outN, ohw);
            } else {
                im2col(col, x, xOff + n * chw, sh);
                sgemm(false, false, sh.k(), ohw, crs, w, wOff, crs, col, 0, ohw, 0f, o, outN, ohw);
            }
            if (bias != null) {
                float[] b = array(bias);
                int bOff = offset(bias);
                Parallel.forEach(sh.k(), k -> {
                    float bk = b[bOff + k];
                    int row = outN + k * ohw;
                    for (int p = 0; p < ohw; p++) o[row + p] += bk;
                });
            }
        }
        if (col != null) COLS.push(col);
    }

    /** dIn += weightᵀ · dOut, folded back from columns to pixels (col2im). */
    static void backwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape sh) {
        float[] dx = array(dIn), dy = array(dOut), w = array(weight);
        int dxOff = offset(dIn), dyOff = offset(dOut), wOff = offset(weight);
        int ohw = sh.outH() * sh.outW(), crs = sh.c() * sh.r() * sh.s(), chw = sh.c() * sh.h() * sh.w();
        boolean direct = isPointwise(sh);
        float[] dcol = direct ? null : acquire((long) crs * ohw);
        for (int n = 0; n < sh.n(); n++) {
            int dyN = dyOff + n * sh.k() * ohw;
            if (direct) {
                sgemm(true, false, sh.c(), ohw, sh.k(), w, wOff, sh.c(), dy, dyN, ohw, 1f, dx, dxOff + n * chw, ohw);
            } else {
                sgemm(true, false, crs, ohw, sh.k(), w, wOff, crs, dy, dyN, ohw, 0f, dcol, 0, ohw);
                col2imAdd(dx, dxOff + n * chw, dcol, sh);
            }
        }
        if (dcol != null) COLS.push(dcol);
    }

    /** dWeight += Σ_n dOut[n] · col[n]ᵀ (samples in order); dBias[k] += Σ dOut[:, k]. */
    static void backwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape sh) {
        float[] dy = array(dOut);
        int dyOff = offset(dOut);
        int ohw = sh.outH() * sh.outW(), crs = sh.c() * sh.r() * sh.s(), chw = sh.c() * sh.h() * sh.w();
        if (dWeight != null) {
            float[] dw = array(dWeight), x = array(in);
            int dwOff = offset(dWeight), xOff = offset(in);
            boolean direct = isPointwise(sh);
            float[] col = direct ? null : acquire((long) crs * ohw);
            for (int n = 0; n < sh.n(); n++) {
                int dyN = dyOff + n * sh.k() * ohw;
                if (direct) {
                    sgemm(false, true, sh.k(), sh.c(), ohw, dy, dyN, ohw, x, xOff + n * chw, ohw, 1f, dw, dwOff, sh.c());
                } else {
                    im2col(col, x, xOff + n * chw, sh);
                    sgemm(false, true, sh.k(), crs, ohw, dy, dyN, ohw, col, 0, ohw, 1f, dw, dwOff, crs);
                }
            }
            if (col != null) COLS.push(col);
        }
        if (dBias != null) {
            float[] db = array(dBias);
            int dbOff = offset(dBias);
            Parallel.forEach(sh.k(), k -> {
                double sum = 0;
                for (int n = 0; n < sh.n(); n++) {
                    int row = dyOff + (n * sh.k() + k) * ohw;
                    for (int p = 0; p < ohw; p++) sum += dy[row + p];
                }
                db[dbOff + k] += (float) sum;
            });
        }
    }

    /**
     * C[m, n] = op(A) · op(B) + beta · C. Gemm splits its work into blocks of {@link Gemm#MC} rows × {@link Gemm#NC}
     * columns; a product that fits one block would run on one core, so it is cut here into column slices of
     * {@link #SLICE} that run in parallel (each slice a product of its own, the same whatever the thread count).
     */
    private static void sgemm(boolean transA, boolean transB, int m, int n, int k, float[] a, int aOff, int lda,
                              float[] b, int bOff, int ldb, float beta, float[] c, int cOff, int ldc) {
        if (m > Gemm.MC || n > Gemm.NC || n < 2 * SLICE) {
            Gemm.sgemm(transA, transB, m, n, k, 1f, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
            return;
        }
        int slices = (n + SLICE - 1) / SLICE;
        Parallel.forEach(slices, t -> {
            int j0 = t * SLICE, width = Math.min(SLICE, n - j0);
            int bSlice = bOff + (transB ? j0 * ldb : j0);
            Gemm.sgemm(transA, transB, m, width, k, 1f, a, aOff, lda, b, bSlice, ldb, beta, c, cOff + j0, ldc);
        });
    }

    /** A pooled buffer of at least {@code size} floats (contents undefined); give it back with COLS.push. */
    private static float[] acquire(long size) {
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("conv column buffer of " + size + " floats");
        float[] a = COLS.poll();
        return a != null && a.length >= size ? a : new float[(int) size];
    }

    private static boolean isPointwise(Conv2dShape sh) {
        return sh.r() == 1 && sh.s() == 1 && sh.stride() == 1 && sh.pad() == 0;
    }

    /** col[crs, ohw] from one sample x[c, h, w] starting at xOff. */
    private static void im2col(float[] col, float[] x, int xOff, Conv2dShape sh) {
        int oh = sh.outH(), ow = sh.outW(), ohw = oh * ow;
        int h = sh.h(), w = sh.w(), r = sh.r(), s = sh.s(), stride = sh.stride(), pad = sh.pad();
        Parallel.forEach(sh.c() * r * s, row -> {
            int ci = row / (r * s), kr = (row / s) % r, ks = row % s;
            int plane = xOff + ci * h * w;
            int colRow = row * ohw;
            for (int oy = 0; oy < oh; oy++) {
                int iy = oy * stride - pad + kr;
                int dst = colRow + oy * ow;
                if (iy < 0 || iy >= h) {
                    for (int ox = 0; ox < ow; ox++) col[dst + ox] = 0f;
                    continue;
                }
                int src = plane + iy * w;
                for (int ox = 0; ox < ow; ox++) {
                    int ix = ox * stride - pad + ks;
                    col[dst + ox] = (ix >= 0 && ix < w) ? x[src + ix] : 0f;
                }
            }
        });
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
