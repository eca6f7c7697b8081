package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * Multi-head scaled-dot-product attention on the [b, tokens, heads·d] layout: head h of sample b is the
 * [tokens, d] block starting at column h·d with row stride heads·d. (b, h) pairs run in parallel; each is computed
 * by one task. Heads of at least {@link #GEMM_MIN_D} channels (SD's 40–160, CLIP's 64) run as strided GEMMs and a
 * softmax; narrower heads (small test models) run as direct loops over key-indexed copies of the head, where a
 * GEMM would spend its time packing. Scratch is pooled: no per-call allocation once warm.
 */
final class AttentionOps {
    /** head width from which the products go through {@link Gemm}. */
    static final int GEMM_MIN_D = 16;

    // score matrices, pooled rather than per-thread: a task waiting in a nested GEMM may be re-entered (work stealing)
    private static final ConcurrentLinkedDeque<float[]> SCRATCH = new ConcurrentLinkedDeque<>();

    private AttentionOps() {}

    static void forward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                        int b, int heads, int lq, int lk, int d, float scale, boolean causal) {
        float[] o = array(out), qa = array(q), ka = array(k), va = array(v);
        float[] pa = probs == null ? null : array(probs);
        int ld = heads * d;
        Parallel.forEach(b * heads, bh -> {
            int bi = bh / heads, hi = bh % heads;
            int qOff = offset(q) + bi * lq * ld + hi * d;
            int kOff = offset(k) + bi * lk * ld + hi * d;
            int vOff = offset(v) + bi * lk * ld + hi * d;
            int oOff = offset(out) + bi * lq * ld + hi * d;
            int pOff = pa != null ? offset(probs) + bh * lq * lk : 0;
            if (d >= GEMM_MIN_D) {
                // scores[lq, lk] = scale · q_h k_hᵀ; softmax per row; out_h[lq, d] = probs · v_h
                float[] p = pa != null ? pa : acquire((long) lq * lk);
                Gemm.sgemm(false, true, lq, lk, d, scale, qa, qOff, ld, ka, kOff, ld, 0f, p, pOff, lk);
                for (int i = 0; i < lq; i++) softmaxRow(p, pOff + i * lk, causal ? Math.min(lk, i + 1) : lk, lk);
                Gemm.sgemm(false, false, lq, d, lk, 1f, p, pOff, lk, va, vOff, ld, 0f, o, oOff, ld);
                if (pa == null) SCRATCH.push(p);
            } else {
                Narrow s = Narrow.acquire(lk, d);
                packRows(s.kT, ka, kOff, ld, lk, d);
                packRows(s.vT, va, vOff, ld, lk, d);
                float[] row = s.row;
                for (int i = 0; i < lq; i++) {
                    int allowed = causal ? Math.min(lk, i + 1) : lk;
                    int qRow = qOff + i * ld;
                    // row[j] = Σ_c (scale · q[i, c]) kT[c][j]; the loops index row and kT[c] alike (C2 vectorises)
                    Arrays.fill(row, 0, allowed, 0f);
                    for (int c = 0; c < d; c++) {
                        float qc = scale * qa[qRow + c];
                        float[] kc = s.kT[c];
                        for (int j = 0; j < allowed; j++) row[j] += qc * kc[j];
                    }
                    softmaxRow(row, 0, allowed, lk);
                    if (pa != null) System.arraycopy(row, 0, pa, pOff + i * lk, lk);
                    int oRow = oOff + i * ld;
                    for (int c = 0; c < d; c++) o[oRow + c] = dot(row, s.vT[c], allowed);
                }
                Narrow.release(s);
            }
        });
    }

    /**
     * dv_h += Pᵀ dOut_h; dP = dOut_h v_hᵀ; dS = P ⊙ (dP - rowsum(dP ⊙ P)); dq_h += scale · dS k_h;
     * dk_h += scale · dSᵀ q_h. Masked entries have P = 0, hence dS = 0, so no mask is needed here.
     */
    static void backward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                         Tensor probs, int b, int heads, int lq, int lk, int d, float scale) {
        float[] dy = array(dOut), qa = array(q), ka = array(k), va = array(v), pa = array(probs);
        int ld = heads * d;
        Parallel.forEach(b * heads, bh -> {
            int bi = bh / heads, hi = bh % heads;
            int qRow = bi * lq * ld + hi * d, kRow = bi * lk * ld + hi * d;
            int dyOff = offset(dOut) + qRow;
            int pOff = offset(probs) + bh * lq * lk;
            if (d >= GEMM_MIN_D) {
                if (dv != null) {
                    Gemm.sgemm(true, false, lk, d, lq, 1f, pa, pOff, lk, dy, dyOff, ld, 1f, array(dv), offset(dv) + kRow, ld);
                }
                if (dq == null && dk == null) return;
                float[] ds = acquire((long) lq * lk);
                Gemm.sgemm(false, true, lq, lk, d, 1f, dy, dyOff, ld, va, offset(v) + kRow, ld, 0f, ds, 0, lk);
                for (int i = 0; i < lq; i++) softmaxGradRow(ds, i * lk, pa, pOff + i * lk, lk);
                if (dq != null) {
                    Gemm.sgemm(false, false, lq, d, lk, scale, ds, 0, lk, ka, offset(k) + kRow, ld, 1f, array(dq), offset(dq) + qRow, ld);
                }
                if (dk != null) {
                    Gemm.sgemm(true, false, lk, d, lq, scale, ds, 0, lk, qa, offset(q) + qRow, ld, 1f, array(dk), offset(dk) + kRow, ld);
                }
                SCRATCH.push(ds);
            } else {
                narrowBackward(dq, dk, dv, dy, dyOff, qa, offset(q) + qRow, ka, offset(k) + kRow, va,
                        offset(v) + kRow, pa, pOff, qRow, kRow, lq, lk, d, ld, scale);
            }
        });
    }

    /**
     * One narrow head's backward, a query row at a time, on transposed [d][lk] copies so every inner loop runs
     * over keys j: ds = P_i ⊙ (dOut_i v_hᵀ − dot); dq_i += scale · ds k_h; dkT[c] += scale · q[i, c] · ds;
     * dvT[c] += dOut[i, c] · P_i; dk and dv are summed over i in scratch, then added once.
     */
    private static void narrowBackward(Tensor dq, Tensor dk, Tensor dv, float[] dy, int dyOff, float[] qa, int qOff,
                                       float[] ka, int kOff, float[] va, int vOff, float[] pa, int pOff, int qRow,
                                       int kRow, int lq, int lk, int d, int ld, float scale) {
        Narrow s = Narrow.acquire(lk, d);
        packRows(s.kT, ka, kOff, ld, lk, d);
        packRows(s.vT, va, vOff, ld, lk, d);
        for (int c = 0; c < d; c++) {
            Arrays.fill(s.dkT[c], 0, lk, 0f);
            Arrays.fill(s.dvT[c], 0, lk, 0f);
        }
        float[] p = s.p, ds = s.row;
        for (int i = 0; i < lq; i++) {
            int dyRow = dyOff + i * ld, qi = qOff + i * ld;
            System.arraycopy(pa, pOff + i * lk, p, 0, lk);
            for (int c = 0; c < d; c++) {
                float g = dy[dyRow + c];
                float[] dvc = s.dvT[c];
                for (int j = 0; j < lk; j++) dvc[j] += g * p[j];
            }
            if (dq == null && dk == null) continue;
            Arrays.fill(ds, 0, lk, 0f);
            for (int c = 0; c < d; c++) {
                float g = dy[dyRow + c];
                float[] vc = s.vT[c];
                for (int j = 0; j < lk; j++) ds[j] += g * vc[j];
            }
            softmaxGradRow(ds, 0, p, 0, lk);
            if (dq != null) {
                float[] dqa = array(dq);
                int dqRow = offset(dq) + qRow + i * ld;
                for (int c = 0; c < d; c++) dqa[dqRow + c] += scale * dot(ds, s.kT[c], lk);
            }
            if (dk != null) {
                for (int c = 0; c < d; c++) {
                    float g = scale * qa[qi + c];
                    float[] dkc = s.dkT[c];
                    for (int j = 0; j < lk; j++) dkc[j] += g * ds[j];
                }
            }
        }
        if (dk != null) addRows(array(dk), offset(dk) + kRow, ld, s.dkT, lk, d);
        if (dv != null) addRows(array(dv), offset(dv) + kRow, ld, s.dvT, lk, d);
        Narrow.release(s);
    }

    /** Per-task arrays of a narrow head, pooled: key-indexed rows [d][≥ lk] and two rows of scores. */
    private static final class Narrow {
        private static final ConcurrentLinkedDeque<Narrow> POOL = new ConcurrentLinkedDeque<>();
        final float[][] kT, vT, dkT, dvT;
        final float[] row, p;

        private Narrow(int lk, int d) {
            kT = new float[d][lk];
            vT = new float[d][lk];
            dkT = new float[d][lk];
            dvT = new float[d][lk];
            row = new float[lk];
            p = new float[lk];
        }

        static Narrow acquire(int lk, int d) {
            Narrow s = POOL.poll();
            return s != null && s.kT.length >= d && s.row.length >= lk ? s : new Narrow(lk, d);
        }

        static void release(Narrow s) { POOL.push(s); }
    }

    /** Σ_j a[j] · b[j] for j < n in four interleaved float partial sums (a fixed order). */
    private static float dot(float[] a, float[] b, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int j = 0;
        for (; j + 3 < n; j += 4) {
            s0 += a[j] * b[j];
            s1 += a[j + 1] * b[j + 1];
            s2 += a[j + 2] * b[j + 2];
            s3 += a[j + 3] * b[j + 3];
        }
        for (; j < n; j++) s0 += a[j] * b[j];
        return (s0 + s1) + (s2 + s3);
    }

    /** In place over one row: ds = p ⊙ (ds − Σ ds ⊙ p). */
    private static void softmaxGradRow(float[] ds, int dsOff, float[] p, int pOff, int len) {
        double dot = 0;
        for (int j = 0; j < len; j++) dot += (double) ds[dsOff + j] * p[pOff + j];
        float dotF = (float) dot;
        for (int j = 0; j < len; j++) ds[dsOff + j] = p[pOff + j] * (ds[dsOff + j] - dotF);
    }

    /** rows[c][t] = src[sOff + t·ld + c]: one head's [tokens, d] block transposed to key-indexed rows. */
    private static void packRows(float[][] rows, float[] src, int sOff, int ld, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) rows[c][t] = src[sOff + t * ld + c];
        }
    }

    /** dst[dOff + t·ld + c] += rows[c][t]. */
    private static void addRows(float[] dst, int dOff, int ld, float[][] rows, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) dst[dOff + t * ld + c] += rows[c][t];
        }
    }

    /** A pooled array of at least {@code size} floats (contents undefined). */
    private static float[] acquire(long size) {
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("attention scratch of " + size + " floats");
        float[] a = SCRATCH.poll();
        if (a == null || a.length < size) a = new float[(int) size];
        return a;
    }

    /**
     * In place: row[0, allowed) = softmax(row[0, allowed)) with max subtraction, row[allowed, len) = 0.
     * Shared with the plain softmax op. exp by {@link FastExp} (vectorised); the sum in double, in four interleaved
     * partial sums (a fixed order).
     */
    static void softmaxRow(float[] a, int off, int allowed, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < allowed; j++) max = Math.max(max, a[off + j]);
        FastExp.expShifted(a, off, allowed, max);
        // independent add chains
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int j = 0;
        for (; j + 3 < allowed; j += 4) {
            s0 += a[off + j];
            s1 += a[off + j + 1];
            s2 += a[off + j + 2];
            s3 += a[off + j + 3];
        }
        for (; j < allowed; j++) s0 += a[off + j];
        float inv = (float) (1 / ((s0 + s1) + (s2 + s3)));
        for (j = 0; j < allowed; j++) a[off + j] *= inv;
        for (j = allowed; j < len; j++) a[off + j] = 0f;
    }
}
