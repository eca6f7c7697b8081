package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import java.util.concurrent.ConcurrentLinkedDeque;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * Multi-head scaled-dot-product attention on the [b, tokens, heads·d] layout: head h of sample b is the
 * [tokens, d] block starting at column h·d with row stride heads·d. (b, h) pairs run in parallel; each is computed
 * by one task. Heads of at least {@link #GEMM_MIN_D} channels (SD's 40–160, CLIP's 64) run as strided GEMMs and a
 * softmax; narrower heads (small test models) run in {@link NarrowAttention}. Scratch is pooled: no per-call
 * allocation once warm.
 */
final class AttentionOps {
    /** head width from which the products go through {@link Gemm}. */
    static final int GEMM_MIN_D = 16;

    // score matrices, pooled rather than per-thread: a task waiting in a nested GEMM may be re-entered (work stealing)
    private static final ConcurrentLinkedDeque<float[]> SCRATCH = new ConcurrentLinkedDeque<>();

    private AttentionOps() {}

    static void forward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                        int b, int heads, int lq, int lk, int d, float scale, boolean causal) {
        if (probs == null && !causal && d >= GEMM_MIN_D) {   // nothing to save: the fused kernel needs no scores matrix
            fusedForward(out, null, q, k, v, b, heads, lq, lk, d, scale);
            return;
        }
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
                NarrowAttention.forward(o, oOff, pa, pOff, qa, qOff, ka, kOff, va, vOff, ld, lq, lk, d, scale, causal);
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
                NarrowAttention.backward(dq, dk, dv, qRow, kRow, dy, dyOff, qa, offset(q) + qRow, ka, offset(k) + kRow,
                        va, offset(v) + kRow, pa, pOff, ld, lq, lk, d, scale);
            }
        });
    }

    /** {@link FusedAttention#forward} per (sample, head); stats [b, heads, lq] receives the log-sum-exps when not null. */
    static void fusedForward(Tensor out, Tensor stats, Tensor q, Tensor k, Tensor v,
                             int b, int heads, int lq, int lk, int d, float scale) {
        float[] o = array(out), qa = array(q), ka = array(k), va = array(v);
        float[] lse = stats == null ? null : array(stats);
        int ld = heads * d;
        Parallel.forEach(b * heads, bh -> {
            int bi = bh / heads, hi = bh % heads;
            int qRow = bi * lq * ld + hi * d, kRow = bi * lk * ld + hi * d;
            FusedAttention.forward(o, offset(out) + qRow, lse, lse == null ? 0 : offset(stats) + bh * lq,
                    qa, offset(q) + qRow, ka, offset(k) + kRow, va, offset(v) + kRow, ld, lq, lk, d, scale);
        });
    }

    /** {@link FusedAttention#backward} per (sample, head), from the forward's out and stats. */
    static void fusedBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out,
                              Tensor stats, int b, int heads, int lq, int lk, int d, float scale) {
        float[] dqa = dq == null ? null : array(dq), dka = dk == null ? null : array(dk), dva = dv == null ? null : array(dv);
        int ld = heads * d;
        Parallel.forEach(b * heads, bh -> {
            int bi = bh / heads, hi = bh % heads;
            int qRow = bi * lq * ld + hi * d, kRow = bi * lk * ld + hi * d;
            FusedAttention.backward(dqa, dq == null ? 0 : offset(dq) + qRow, dka, dk == null ? 0 : offset(dk) + kRow,
                    dva, dv == null ? 0 : offset(dv) + kRow, array(dOut), offset(dOut) + qRow,
                    array(q), offset(q) + qRow, array(k), offset(k) + kRow, array(v), offset(v) + kRow,
                    array(out), offset(out) + qRow, array(stats), offset(stats) + bh * lq, ld, lq, lk, d, scale);
        });
    }

    /** In place over one row: ds = p ⊙ (ds − Σ ds ⊙ p). */
    private static void softmaxGradRow(float[] ds, int dsOff, float[] p, int pOff, int len) {
        double dot = 0;
        for (int j = 0; j < len; j++) dot += (double) ds[dsOff + j] * p[pOff + j];
        float dotF = (float) dot;
        for (int j = 0; j < len; j++) ds[dsOff + j] = p[pOff + j] * (ds[dsOff + j] - dotF);
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
     * Shared with the plain softmax op. exp by {@link FastExp} (vectorised); the sum by {@link Sums#interleaved}.
     */
    static void softmaxRow(float[] a, int off, int allowed, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < allowed; j++) max = Math.max(max, a[off + j]);
        FastExp.expShifted(a, off, allowed, max);
        float inv = (float) (1 / Sums.interleaved(a, off, allowed));
        for (int j = 0; j < allowed; j++) a[off + j] *= inv;
        for (int j = allowed; j < len; j++) a[off + j] = 0f;
    }
}
