package esdnative.backend.cpu;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.Arrays;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * The pure-Java reference backend: float32 tensors in {@code float[]}s, multi-threaded with {@link Parallel}
 * over independent outputs, every reduction in a fixed order (bit-identical results for any thread count).
 * Matrix products go through {@link Gemm#sgemm}. Convolution, normalisation and attention live in
 * {@link ConvOps}, {@link NormOps} and {@link AttentionOps}; the small ops are here.
 */
public final class CpuBackend implements Backend {
    /** elements per task of elementwise ops and per partial sum of reductions (fixed: determinism) */
    private static final int GRAIN = 1 << 14;
    /** columns per transpose task */
    private static final int TILE = 16;
    /** work of a softmax element: exp or a double dot product, and several passes over the row */
    private static final int SOFTMAX_WORK = 12;

    private final ArrayRecycler recycler = new ArrayRecycler();

    @Override
    public String name() { return "cpu"; }

    // ---- memory -------------------------------------------------------------------------------------------

    @Override
    public Tensor zeros(int... shape) {
        long size = Tensor.sizeOf(shape);
        if (size > CpuStorage.MAX_ELEMENTS) {
            throw new IllegalArgumentException("tensor " + Arrays.toString(shape) + " has " + size
                    + " elements, more than one CPU array holds (" + CpuStorage.MAX_ELEMENTS + ")");
        }
        return new Tensor(new CpuStorage(recycler.allocate((int) size)), 0, shape);
    }

    @Override
    public Scope openScope() { return recycler.openScope(); }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        if (Tensor.sizeOf(shape) != data.length) {
            throw new IllegalArgumentException(data.length + " values for shape " + Arrays.toString(shape));
        }
        return new Tensor(new CpuStorage(data.clone()), 0, shape);
    }

    @Override
    public float[] toHost(Tensor t) {
        int off = offset(t);
        return Arrays.copyOfRange(array(t), off, off + (int) t.size());
    }

    @Override
    public void copyFromHost(Tensor dst, float[] src, int srcOffset) {
        if (srcOffset < 0 || srcOffset + dst.size() > src.length) {
            throw new IllegalArgumentException("copyFromHost: " + dst + " needs " + dst.size() + " floats from offset "
                    + srcOffset + " of a host array of " + src.length);
        }
        System.arraycopy(src, srcOffset, array(dst), offset(dst), (int) dst.size());
    }

    @Override
    public void fill(Tensor t, float value) {
        int off = offset(t);
        Arrays.fill(array(t), off, off + (int) t.size(), value);
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        if (dst.size() != src.size()) {
            throw new IllegalArgumentException("copy of " + src + " into " + dst + ": sizes differ");
        }
        System.arraycopy(array(src), offset(src), array(dst), offset(dst), (int) src.size());
    }

    // ---- linear algebra ------------------------------------------------------------------------------------

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB,
                     float beta, Tensor c, int ldc, long strideC, int batch) {
        need("gemm", "a", a, extent(batch, strideA, transA ? k : m, lda, transA ? m : k));
        need("gemm", "b", b, extent(batch, strideB, transB ? n : k, ldb, transB ? k : n));
        need("gemm", "c", c, extent(batch, strideC, m, ldc, n));
        float[] aa = array(a), ba = array(b), ca = array(c);
        for (int i = 0; i < batch; i++) {
            Gemm.sgemm(transA, transB, m, n, k, alpha,
                    aa, offset(a) + (int) (i * strideA), lda, ba, offset(b) + (int) (i * strideB), ldb,
                    beta, ca, offset(c) + (int) (i * strideC), ldc);
        }
    }

    @Override
    public void addRowBias(Tensor y, Tensor bias, int rows, int cols) {
        need("addRowBias", "y", y, (long) rows * cols);
        need("addRowBias", "bias", bias, cols);
        float[] ya = array(y), ba = array(bias);
        int yOff = offset(y), bOff = offset(bias);
        Parallel.forEach(rows, (long) rows * cols, r -> {
            int row = yOff + r * cols;
            for (int j = 0; j < cols; j++) ya[row + j] += ba[bOff + j];
        });
    }

    @Override
    public void sumRows(Tensor dBias, Tensor dy, int rows, int cols) {
        need("sumRows", "dBias", dBias, cols);
        need("sumRows", "dy", dy, (long) rows * cols);
        float[] db = array(dBias), g = array(dy);
        int dbOff = offset(dBias), gOff = offset(dy);
        // column blocks, each summing all rows in order
        Parallel.forRanges(cols, 64, (long) rows * cols, (c0, c1) -> {
            int from = c0, width = c1 - c0;
            double[] sum = new double[width];
            for (int r = 0; r < rows; r++) {
                int row = gOff + r * cols + from;
                for (int j = 0; j < width; j++) sum[j] += g[row + j];
            }
            for (int j = 0; j < width; j++) db[dbOff + from + j] += (float) sum[j];
        });
    }

    @Override
    public void transpose(Tensor out, Tensor in, int batch, int rows, int cols) {
        need("transpose", "out", out, (long) batch * rows * cols);
        need("transpose", "in", in, (long) batch * rows * cols);
        float[] o = array(out), x = array(in);
        int oOff = offset(out), xOff = offset(in);
        // one task per (bi, block of TILE columns of in); it moves TILE × TILE tiles through a small buffer, so
        // each input and output line is read or written whole at once: with a power-of-two row length the TILE
        // output lines a tile writes share one L1 set and would not stay cached from one input row to the next
        int blocks = (cols + TILE - 1) / TILE;
        Parallel.forEach(batch * blocks, (long) batch * rows * cols, task -> {
            int bi = task / blocks, c0 = (task % blocks) * TILE, width = Math.min(TILE, cols - c0);
            int src = xOff + bi * rows * cols + c0, dst = oOff + bi * rows * cols + c0 * rows;
            float[] tile = new float[TILE * TILE]; // [column][row] of the current tile
            for (int r0 = 0; r0 < rows; r0 += TILE) {
                int height = Math.min(TILE, rows - r0);
                for (int r = 0; r < height; r++) {
                    int from = src + (r0 + r) * cols;
                    for (int c = 0; c < width; c++) tile[c * TILE + r] = x[from + c];
                }
                for (int c = 0; c < width; c++) System.arraycopy(tile, c * TILE, o, dst + c * rows + r0, height);
            }
        });
    }

    // ---- convolution ---------------------------------------------------------------------------------------

    @Override
    public void conv2d(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape shape) {
        need("conv2d", "out", out, outSize(shape));
        need("conv2d", "in", in, inSize(shape));
        need("conv2d", "weight", weight, weightSize(shape));
        need("conv2d", "bias", bias, shape.k());
        ConvOps.forward(out, in, weight, bias, shape);
    }

    @Override
    public void conv2dBackwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape shape) {
        need("conv2dBackwardData", "dIn", dIn, inSize(shape));
        need("conv2dBackwardData", "dOut", dOut, outSize(shape));
        need("conv2dBackwardData", "weight", weight, weightSize(shape));
        ConvOps.backwardData(dIn, dOut, weight, shape);
    }

    @Override
    public void conv2dBackwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape shape) {
        need("conv2dBackwardWeight", "dWeight", dWeight, weightSize(shape));
        need("conv2dBackwardWeight", "dBias", dBias, shape.k());
        need("conv2dBackwardWeight", "dOut", dOut, outSize(shape));
        need("conv2dBackwardWeight", "in", in, inSize(shape));
        ConvOps.backwardWeight(dWeight, dBias, dOut, in, shape);
    }

    // ---- normalisation -------------------------------------------------------------------------------------

    @Override
    public void groupNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int n, int c, int hw, int groups, float eps) {
        long size = (long) n * c * hw;
        need("groupNorm", "out", out, size);
        need("groupNorm", "in", in, size);
        need("groupNorm", "mean", mean, (long) n * groups);
        need("groupNorm", "rstd", rstd, (long) n * groups);
        need("groupNorm", "gamma", gamma, c);
        need("groupNorm", "beta", beta, c);
        NormOps.groupNorm(out, mean, rstd, in, gamma, beta, n, c, hw, groups, eps);
    }

    @Override
    public void groupNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int n, int c, int hw, int groups) {
        long size = (long) n * c * hw;
        need("groupNormBackward", "dIn", dIn, size);
        need("groupNormBackward", "dOut", dOut, size);
        need("groupNormBackward", "in", in, size);
        need("groupNormBackward", "mean", mean, (long) n * groups);
        need("groupNormBackward", "rstd", rstd, (long) n * groups);
        need("groupNormBackward", "gamma", gamma, c);
        need("groupNormBackward", "dGamma", dGamma, c);
        need("groupNormBackward", "dBeta", dBeta, c);
        NormOps.groupNormBackward(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma, n, c, hw, groups);
    }

    @Override
    public void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int rows, int cols, float eps) {
        long size = (long) rows * cols;
        need("layerNorm", "out", out, size);
        need("layerNorm", "in", in, size);
        need("layerNorm", "mean", mean, rows);
        need("layerNorm", "rstd", rstd, rows);
        need("layerNorm", "gamma", gamma, cols);
        need("layerNorm", "beta", beta, cols);
        NormOps.layerNorm(out, mean, rstd, in, gamma, beta, rows, cols, eps);
    }

    @Override
    public void layerNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int rows, int cols) {
        long size = (long) rows * cols;
        need("layerNormBackward", "dIn", dIn, size);
        need("layerNormBackward", "dOut", dOut, size);
        need("layerNormBackward", "in", in, size);
        need("layerNormBackward", "mean", mean, rows);
        need("layerNormBackward", "rstd", rstd, rows);
        need("layerNormBackward", "gamma", gamma, cols);
        need("layerNormBackward", "dGamma", dGamma, cols);
        need("layerNormBackward", "dBeta", dBeta, cols);
        NormOps.layerNormBackward(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma, rows, cols);
    }

    @Override
    public void softmax(Tensor out, Tensor in, int rows, int cols) {
        need("softmax", "out", out, (long) rows * cols);
        need("softmax", "in", in, (long) rows * cols);
        float[] o = array(out), x = array(in);
        int oOff = offset(out), xOff = offset(in);
        Parallel.forEach(rows, (long) rows * cols * SOFTMAX_WORK, r -> {
            System.arraycopy(x, xOff + r * cols, o, oOff + r * cols, cols);
            AttentionOps.softmaxRow(o, oOff + r * cols, cols, cols);
        });
    }

    @Override
    public void softmaxBackward(Tensor dIn, Tensor dOut, Tensor out, int rows, int cols) {
        need("softmaxBackward", "dIn", dIn, (long) rows * cols);
        need("softmaxBackward", "dOut", dOut, (long) rows * cols);
        need("softmaxBackward", "out", out, (long) rows * cols);
        float[] dx = array(dIn), dy = array(dOut), y = array(out);
        int dxOff = offset(dIn), dyOff = offset(dOut), yOff = offset(out);
        Parallel.forEach(rows, (long) rows * cols * SOFTMAX_WORK, r -> {
            int base = r * cols;
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += (double) dy[dyOff + base + j] * y[yOff + base + j];
            for (int j = 0; j < cols; j++) {
                dx[dxOff + base + j] += (float) (y[yOff + base + j] * (dy[dyOff + base + j] - dot));
            }
        });
    }

    // ---- attention -----------------------------------------------------------------------------------------

    @Override
    public void attention(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                          int b, int heads, int lq, int lk, int d, float scale, boolean causal) {
        long qSize = (long) b * lq * heads * d, kSize = (long) b * lk * heads * d;
        need("attention", "out", out, qSize);
        need("attention", "q", q, qSize);
        need("attention", "k", k, kSize);
        need("attention", "v", v, kSize);
        need("attention", "probs", probs, (long) b * heads * lq * lk);
        AttentionOps.forward(out, probs, q, k, v, b, heads, lq, lk, d, scale, causal);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor probs, int b, int heads, int lq, int lk, int d, float scale) {
        long qSize = (long) b * lq * heads * d, kSize = (long) b * lk * heads * d;
        need("attentionBackward", "dOut", dOut, qSize);
        need("attentionBackward", "q", q, qSize);
        need("attentionBackward", "dq", dq, qSize);
        need("attentionBackward", "k", k, kSize);
        need("attentionBackward", "dk", dk, kSize);
        need("attentionBackward", "v", v, kSize);
        need("attentionBackward", "dv", dv, kSize);
        need("attentionBackward", "probs", probs, (long) b * heads * lq * lk);
        AttentionOps.backward(dq, dk, dv, dOut, q, k, v, probs, b, heads, lq, lk, d, scale);
    }

    @Override
    public void attentionWithStats(Tensor out, Tensor stats, Tensor q, Tensor k, Tensor v,
                                   int b, int heads, int lq, int lk, int d, float scale) {
        long qSize = (long) b * lq * heads * d, kSize = (long) b * lk * heads * d;
        need("attentionWithStats", "out", out, qSize);
        need("attentionWithStats", "q", q, qSize);
        need("attentionWithStats", "k", k, kSize);
        need("attentionWithStats", "v", v, kSize);
        need("attentionWithStats", "stats", stats, (long) b * heads * lq);
        AttentionOps.fusedForward(out, stats, q, k, v, b, heads, lq, lk, d, scale);
    }

    @Override
    public void attentionBackwardFromStats(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                           Tensor out, Tensor stats, int b, int heads, int lq, int lk, int d, float scale) {
        long qSize = (long) b * lq * heads * d, kSize = (long) b * lk * heads * d;
        need("attentionBackwardFromStats", "dOut", dOut, qSize);
        need("attentionBackwardFromStats", "q", q, qSize);
        need("attentionBackwardFromStats", "dq", dq, qSize);
        need("attentionBackwardFromStats", "out", out, qSize);
        need("attentionBackwardFromStats", "k", k, kSize);
        need("attentionBackwardFromStats", "dk", dk, kSize);
        need("attentionBackwardFromStats", "v", v, kSize);
        need("attentionBackwardFromStats", "dv", dv, kSize);
        if (stats == null) throw new IllegalArgumentException("attentionBackwardFromStats: stats is null (the forward kept none)");
        need("attentionBackwardFromStats", "stats", stats, (long) b * heads * lq);
        AttentionOps.fusedBackward(dq, dk, dv, dOut, q, k, v, out, stats, b, heads, lq, lk, d, scale);
    }

    // ---- activations ---------------------------------------------------------------------------------------

    @Override
    public void silu(Tensor out, Tensor in, long n) {
        map(out, in, n, (o, oOff, x, xOff, len) -> ActivationOps.xSigmoid(o, oOff, x, xOff, len, 1));
    }

    @Override
    public void siluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        accumulateGrad(dIn, dOut, in, n,
                (dx, dxOff, dy, dyOff, x, xOff, len) -> ActivationOps.xSigmoidBackward(dx, dxOff, dy, dyOff, x, xOff, len, 1));
    }

    @Override
    public void gelu(Tensor out, Tensor in, long n) {
        map(out, in, n, ActivationOps::gelu);
    }

    @Override
    public void geluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        accumulateGrad(dIn, dOut, in, n, ActivationOps::geluBackward);
    }

    @Override
    public void quickGelu(Tensor out, Tensor in, long n) {
        map(out, in, n, (o, oOff, x, xOff, len) ->
                ActivationOps.xSigmoid(o, oOff, x, xOff, len, ActivationOps.QUICK_GELU_ALPHA));
    }

    @Override
    public void quickGeluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        accumulateGrad(dIn, dOut, in, n, (dx, dxOff, dy, dyOff, x, xOff, len) ->
                ActivationOps.xSigmoidBackward(dx, dxOff, dy, dyOff, x, xOff, len, ActivationOps.QUICK_GELU_ALPHA));
    }

    @Override
    public void geglu(Tensor out, Tensor in, int rows, int cols) {
        need("geglu", "out", out, (long) rows * cols);
        need("geglu", "in", in, 2L * rows * cols);
        float[] o = array(out), x = array(in);
        int oOff = offset(out), xOff = offset(in);
        Parallel.forEach(rows, r -> {
            int h = xOff + r * 2 * cols;
            ActivationOps.geglu(o, oOff + r * cols, x, h, h + cols, cols);
        });
    }

    @Override
    public void gegluBackward(Tensor dIn, Tensor dOut, Tensor in, int rows, int cols) {
        need("gegluBackward", "dIn", dIn, 2L * rows * cols);
        need("gegluBackward", "dOut", dOut, (long) rows * cols);
        need("gegluBackward", "in", in, 2L * rows * cols);
        float[] dx = array(dIn), dy = array(dOut), x = array(in);
        int dxOff = offset(dIn), dyOff = offset(dOut), xOff = offset(in);
        Parallel.forEach(rows, r -> {
            int dh = dxOff + r * 2 * cols, h = xOff + r * 2 * cols;
            ActivationOps.gegluBackward(dx, dh, dh + cols, dy, dyOff + r * cols, x, h, h + cols, cols);
        });
    }

    // ---- shape ops -----------------------------------------------------------------------------------------

    @Override
    public void upsampleNearest2x(Tensor out, Tensor in, int nc, int h, int w) {
        need("upsampleNearest2x", "out", out, 4L * nc * h * w);
        need("upsampleNearest2x", "in", in, (long) nc * h * w);
        float[] o = array(out), x = array(in);
        int oOff = offset(out), xOff = offset(in);
        Parallel.forEach(nc, 4L * nc * h * w, p -> {
            for (int y = 0; y < 2 * h; y++) {
                int src = xOff + (p * h + y / 2) * w, dst = oOff + (p * 2 * h + y) * 2 * w;
                for (int xx = 0; xx < 2 * w; xx++) o[dst + xx] = x[src + xx / 2];
            }
        });
    }

    @Override
    public void upsampleNearest2xBackward(Tensor dIn, Tensor dOut, int nc, int h, int w) {
        need("upsampleNearest2xBackward", "dIn", dIn, (long) nc * h * w);
        need("upsampleNearest2xBackward", "dOut", dOut, 4L * nc * h * w);
        float[] dx = array(dIn), dy = array(dOut);
        int dxOff = offset(dIn), dyOff = offset(dOut);
        Parallel.forEach(nc, 4L * nc * h * w, p -> {
            for (int y = 0; y < h; y++) {
                int top = dyOff + (p * 2 * h + 2 * y) * 2 * w, bottom = top + 2 * w;
                int dst = dxOff + (p * h + y) * w;
                for (int xx = 0; xx < w; xx++) {
                    dx[dst + xx] += dy[top + 2 * xx] + dy[top + 2 * xx + 1] + dy[bottom + 2 * xx] + dy[bottom + 2 * xx + 1];
                }
            }
        });
    }

    @Override
    public void concatChannels(Tensor out, Tensor a, Tensor b, int n, int ca, int cb, int hw) {
        need("concatChannels", "out", out, (long) n * (ca + cb) * hw);
        need("concatChannels", "a", a, (long) n * ca * hw);
        need("concatChannels", "b", b, (long) n * cb * hw);
        float[] o = array(out), aa = array(a), ba = array(b);
        int la = ca * hw, lb = cb * hw;
        Parallel.forEach(n, (long) n * (la + lb), i -> {
            int dst = offset(out) + i * (la + lb);
            System.arraycopy(aa, offset(a) + i * la, o, dst, la);
            System.arraycopy(ba, offset(b) + i * lb, o, dst + la, lb);
        });
    }

    @Override
    public void splitChannels(Tensor dA, Tensor dB, Tensor dOut, int n, int ca, int cb, int hw) {
        need("splitChannels", "dOut", dOut, (long) n * (ca + cb) * hw);
        need("splitChannels", "dA", dA, (long) n * ca * hw);
        need("splitChannels", "dB", dB, (long) n * cb * hw);
        float[] dy = array(dOut);
        int la = ca * hw, lb = cb * hw;
        Parallel.forEach(n, (long) n * (la + lb), i -> {
            int src = offset(dOut) + i * (la + lb);
            if (dA != null) addInto(array(dA), offset(dA) + i * la, dy, src, la);
            if (dB != null) addInto(array(dB), offset(dB) + i * lb, dy, src + la, lb);
        });
    }

    // ---- elementwise arithmetic ----------------------------------------------------------------------------

    @Override
    public void add(Tensor out, Tensor a, Tensor b, long n) {
        need("add", "out", out, n);
        need("add", "a", a, n);
        need("add", "b", b, n);
        float[] o = array(out), aa = array(a), ba = array(b);
        int oOff = offset(out), aOff = offset(a), bOff = offset(b);
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = s; i < e; i++) o[oOff + i] = aa[aOff + i] + ba[bOff + i];
        });
    }

    @Override
    public void axpy(Tensor y, float alpha, Tensor x, long n) {
        need("axpy", "y", y, n);
        need("axpy", "x", x, n);
        float[] ya = array(y), xa = array(x);
        int yOff = offset(y), xOff = offset(x);
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = s; i < e; i++) ya[yOff + i] += alpha * xa[xOff + i];
        });
    }

    @Override
    public void scale(Tensor out, Tensor x, float alpha, long n) {
        need("scale", "out", out, n);
        need("scale", "x", x, n);
        float[] o = array(out), xa = array(x);
        int oOff = offset(out), xOff = offset(x);
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = s; i < e; i++) o[oOff + i] = alpha * xa[xOff + i];
        });
    }

    @Override
    public void linearCombination(Tensor out, float alpha, Tensor a, float beta, Tensor b, long n) {
        need("linearCombination", "out", out, n);
        need("linearCombination", "a", a, n);
        need("linearCombination", "b", b, n);
        float[] o = array(out), aa = array(a), ba = array(b);
        int oOff = offset(out), aOff = offset(a), bOff = offset(b);
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = s; i < e; i++) o[oOff + i] = alpha * aa[aOff + i] + beta * ba[bOff + i];
        });
    }

    @Override
    public void addChannelBias(Tensor y, Tensor bias, int n, int c, int hw) {
        need("addChannelBias", "y", y, (long) n * c * hw);
        need("addChannelBias", "bias", bias, (long) n * c);
        float[] ya = array(y), ba = array(bias);
        int yOff = offset(y), bOff = offset(bias);
        Parallel.forEach(n * c, (long) n * c * hw, nc -> {
            float bv = ba[bOff + nc];
            int row = yOff + nc * hw;
            for (int p = 0; p < hw; p++) ya[row + p] += bv;
        });
    }

    @Override
    public void sumChannelBias(Tensor dBias, Tensor dy, int n, int c, int hw) {
        need("sumChannelBias", "dBias", dBias, (long) n * c);
        need("sumChannelBias", "dy", dy, (long) n * c * hw);
        float[] db = array(dBias), g = array(dy);
        int dbOff = offset(dBias), gOff = offset(dy);
        Parallel.forEach(n * c, (long) n * c * hw * Parallel.SERIAL_SUM_WORK, nc -> {
            double sum = 0;
            int row = gOff + nc * hw;
            for (int p = 0; p < hw; p++) sum += g[row + p];
            db[dbOff + nc] += (float) sum;
        });
    }

    // ---- embeddings, losses, optimiser ---------------------------------------------------------------------

    @Override
    public void timestepEmbedding(Tensor out, float[] timesteps, int dim, boolean flipSinToCos, float freqShift,
                                  float maxPeriod) {
        need("timestepEmbedding", "out", out, (long) timesteps.length * dim);
        float[] embedding = TimestepEmbedding.compute(timesteps, dim, flipSinToCos, freqShift, maxPeriod);
        System.arraycopy(embedding, 0, array(out), offset(out), embedding.length);
    }

    @Override
    public float mseLoss(Tensor pred, Tensor target, long n) {
        need("mseLoss", "pred", pred, n);
        need("mseLoss", "target", target, n);
        float[] p = array(pred), t = array(target);
        int pOff = offset(pred), tOff = offset(target);
        // per-range partial sums, added in range order
        double[] partial = new double[(int) ((n + GRAIN - 1) / GRAIN)];
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            double sum = 0;
            for (int i = s; i < e; i++) {
                double d = (double) p[pOff + i] - t[tOff + i];
                sum += d * d;
            }
            partial[s / GRAIN] = sum;
        });
        double total = 0;
        for (double part : partial) total += part;
        return (float) (total / n);
    }

    @Override
    public void mseLossBackward(Tensor dPred, Tensor pred, Tensor target, long n, float scale) {
        need("mseLossBackward", "dPred", dPred, n);
        need("mseLossBackward", "pred", pred, n);
        need("mseLossBackward", "target", target, n);
        float[] dp = array(dPred), p = array(pred), t = array(target);
        int dOff = offset(dPred), pOff = offset(pred), tOff = offset(target);
        double factor = 2.0 * scale / n;
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = s; i < e; i++) {
                dp[dOff + i] += (float) (factor * ((double) p[pOff + i] - t[tOff + i]));
            }
        });
    }

    @Override
    public void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, long n, int step, float lr, float beta1,
                         float beta2, float eps, float weightDecay) {
        need("adamStep", "param", param, n);
        need("adamStep", "grad", grad, n);
        need("adamStep", "m", m, n);
        need("adamStep", "v", v, n);
        AdamStep.apply(array(param), offset(param), array(grad), offset(grad), array(m), offset(m),
                array(v), offset(v), n, step, lr, beta1, beta2, eps, weightDecay);
    }

    @Override
    public void close() {
        // nothing to release: arrays belong to the garbage collector
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    /**
     * Fails when a tensor holds fewer elements than the op's dimensions imply (a null tensor passes: optional
     * outputs). Without it a too-small view would silently read or write its neighbours in a shared buffer.
     */
    private static void need(String op, String arg, Tensor t, long elements) {
        if (t != null && t.size() < elements) {
            throw new IllegalArgumentException(op + ": " + arg + " " + t + " holds " + t.size()
                    + " elements, the dimensions need " + elements);
        }
    }

    /** elements spanned by batch matrices of rows × cols with row stride ld, spaced by stride */
    private static long extent(int batch, long stride, int rows, int ld, int cols) {
        if (batch <= 0 || rows <= 0 || cols <= 0) return 0;
        return (batch - 1) * stride + (long) (rows - 1) * ld + cols;
    }

    private static long inSize(Conv2dShape s) { return (long) s.n() * s.c() * s.h() * s.w(); }

    private static long outSize(Conv2dShape s) { return (long) s.n() * s.k() * s.outH() * s.outW(); }

    private static long weightSize(Conv2dShape s) { return (long) s.k() * s.c() * s.r() * s.s(); }

    /** An elementwise forward over out[outOff, outOff + n) from in[inOff, inOff + n). */
    @FunctionalInterface
    private interface ElementwiseForward {
        void apply(float[] out, int outOff, float[] in, int inOff, int n);
    }

    /** An elementwise backward accumulating into dIn[dInOff, dInOff + n). */
    @FunctionalInterface
    private interface ElementwiseBackward {
        void apply(float[] dIn, int dInOff, float[] dOut, int dOutOff, float[] in, int inOff, int n);
    }

    /** out[i] = f(in[i]) over ranges of GRAIN elements */
    private static void map(Tensor out, Tensor in, long n, ElementwiseForward f) {
        need("activation", "out", out, n);
        need("activation", "in", in, n);
        float[] o = array(out), x = array(in);
        int oOff = offset(out), xOff = offset(in);
        Parallel.forRanges(n, GRAIN, (s, e) -> f.apply(o, oOff + (int) s, x, xOff + (int) s, (int) (e - s)));
    }

    /** dIn[i] += dOut[i] · f'(in[i]) over ranges of GRAIN elements */
    private static void accumulateGrad(Tensor dIn, Tensor dOut, Tensor in, long n, ElementwiseBackward derivative) {
        need("activation backward", "dIn", dIn, n);
        need("activation backward", "dOut", dOut, n);
        need("activation backward", "in", in, n);
        float[] dx = array(dIn), dy = array(dOut), x = array(in);
        int dxOff = offset(dIn), dyOff = offset(dOut), xOff = offset(in);
        Parallel.forRanges(n, GRAIN, (s, e) ->
                derivative.apply(dx, dxOff + (int) s, dy, dyOff + (int) s, x, xOff + (int) s, (int) (e - s)));
    }

    private static void addInto(float[] dst, int dstOff, float[] src, int srcOff, int len) {
        for (int i = 0; i < len; i++) dst[dstOff + i] += src[srcOff + i];
    }
}
