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
 * softmax; narrower heads (small test models) run as direct loops over a packed copy of the head, where a GEMM
 * would spend its time packing. Score matrices live in pooled scratch: no per-call allocation.
 */
final class AttentionOps {
    /** head width from which the products go through {@link Gemm}. */
    static final int GEMM_MIN_D = 16;

    // score scratch, pooled rather than per-thread: a task waiting in a nested GEMM may be re-entered (work stealing)
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
            float[] scratch = pa == null || d < GEMM_MIN_D ? acquire(scratchSize(pa == null, lq, lk, d)) : null;
            float[] p = pa != null ? pa : scratch;
            int pOff = pa != null ? offset(probs) + bh * lq * lk : 0;
            int packOff = pa != null ? 0 : lq * lk;
            if (d >= GEMM_MIN_D) {
                // scores[lq, lk] = scale · q_h k_hᵀ; softmax per row; out_h[lq, d] = probs · v_h
                Gemm.sgemm(false, true, lq, lk, d, scale, qa, qOff, ld, ka, kOff, ld, 0f, p, pOff, lk);
                for (int i = 0; i < lq; i++) softmaxRow(p, pOff + i * lk, causal ? Math.min(lk, i + 1) : lk, lk);
                Gemm.sgemm(false, false, lq, d, lk, 1f, p, pOff, lk, va, vOff, ld, 0f, o, oOff, ld);
            } else {
                // kT[d, lk] and v_h[lk, d] packed contiguous after the scores
                int kT = packOff, vh = packOff + d * lk;
                packTransposed(scratch, kT, ka, kOff, ld, lk, d);
                pack(scratch, vh, va, vOff, ld, lk, d);
                for (int i = 0; i < lq; i++) {
                    int allowed = causal ? Math.min(lk, i + 1) : lk;
                    int row = pOff + i * lk, qRow = qOff + i * ld;
                    Arrays.fill(p, row, row + allowed, 0f);
                    for (int c = 0; c < d; c++) {
                        float qc = scale * qa[qRow + c];
                        int kc = kT + c * lk;
                        for (int j = 0; j < allowed; j++) p[row + j] += qc * scratch[kc + j];
                    }
                    softmaxRow(p, row, allowed, lk);
                    int oRow = oOff + i * ld;
                    for (int c = 0; c < d; c++) o[oRow + c] = 0f;
                    for (int j = 0; j < allowed; j++) {
                        float pj = p[row + j];
                        int vj = vh + j * d;
                        for (int c = 0; c < d; c++) o[oRow + c] += pj * scratch[vj + c];
                    }
                }
            }
            if (scratch != null) SCRATCH.push(scratch);
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
     * One narrow head's backward by rows of P: per query row i, ds = P_i ⊙ (dOut_i v_hᵀ − dot); dq_i += scale·ds k_h;
     * dk and dv summed over i in order in scratch, then added once.
     */
    private static void narrowBackward(Tensor dq, Tensor dk, Tensor dv, float[] dy, int dyOff, float[] qa, int qOff,
                                       float[] ka, int kOff, float[] va, int vOff, float[] pa, int pOff, int qRow,
                                       int kRow, int lq, int lk, int d, int ld, float scale) {
        // scratch: ds[lk] | vT[d, lk] | k_h[lk, d] | dk_h[lk, d] | dv_h[lk, d]
        float[] s = acquire(lk + 4L * d * lk);
        int ds = 0, vT = lk, kh = vT + d * lk, dkh = kh + d * lk, dvh = dkh + d * lk;
        packTransposed(s, vT, va, vOff, ld, lk, d);
        pack(s, kh, ka, kOff, ld, lk, d);
        Arrays.fill(s, dkh, dvh + d * lk, 0f);
        for (int i = 0; i < lq; i++) {
            int pRow = pOff + i * lk, dyRow = dyOff + i * ld, qi = qOff + i * ld;
            for (int j = 0; j < lk; j++) {
                float pj = pa[pRow + j];
                int dvj = dvh + j * d;
                for (int c = 0; c < d; c++) s[dvj + c] += pj * dy[dyRow + c];
            }
            if (dq == null && dk == null) continue;
            Arrays.fill(s, ds, ds + lk, 0f);
            for (int c = 0; c < d; c++) {
                float g = dy[dyRow + c];
                int vc = vT + c * lk;
                for (int j = 0; j < lk; j++) s[ds + j] += g * s[vc + j];
            }
            softmaxGradRow(s, ds, pa, pRow, lk);
            if (dq != null) {
                float[] dqa = array(dq);
                int dqRow = offset(dq) + qRow + i * ld;
                for (int j = 0; j < lk; j++) {
                    float sj = scale * s[ds + j];
                    int kj = kh + j * d;
                    for (int c = 0; c < d; c++) dqa[dqRow + c] += sj * s[kj + c];
                }
            }
            if (dk != null) {
                for (int j = 0; j < lk; j++) {
                    float sj = scale * s[ds + j];
                    int dkj = dkh + j * d;
                    for (int c = 0; c < d; c++) s[dkj + c] += sj * qa[qi + c];
                }
            }
        }
        if (dk != null) addHead(array(dk), offset(dk) + kRow, ld, s, dkh, lk, d);
        if (dv != null) addHead(array(dv), offset(dv) + kRow, ld, s, dvh, lk, d);
        SCRATCH.push(s);
    }

    /** In place over one row: ds = p ⊙ (ds − Σ ds ⊙ p). */
    private static void softmaxGradRow(float[] ds, int dsOff, float[] p, int pOff, int len) {
        double dot = 0;
        for (int j = 0; j < len; j++) dot += (double) ds[dsOff + j] * p[pOff + j];
        float dotF = (float) dot;
        for (int j = 0; j < len; j++) ds[dsOff + j] = p[pOff + j] * (ds[dsOff + j] - dotF);
    }

    /** dst[dOff + t·d + c] = src[sOff + t·ld + c]: one head's [tokens, d] block made contiguous. */
    private static void pack(float[] dst, int dOff, float[] src, int sOff, int ld, int tokens, int d) {
        for (int t = 0; t < tokens; t++) System.arraycopy(src, sOff + t * ld, dst, dOff + t * d, d);
    }

    /** dst[dOff + c·tokens + t] = src[sOff + t·ld + c]: one head's block transposed to [d, tokens]. */
    private static void packTransposed(float[] dst, int dOff, float[] src, int sOff, int ld, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) dst[dOff + c * tokens + t] = src[sOff + t * ld + c];
        }
    }

    /** dst[dOff + t·ld + c] += src[sOff + t·d + c]. */
    private static void addHead(float[] dst, int dOff, int ld, float[] src, int sOff, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) dst[dOff + t * ld + c] += src[sOff + t * d + c];
        }
    }

    /** Forward scratch: the scores when not saved, plus the packed k and v of a narrow head. */
    private static long scratchSize(boolean scores, int lq, int lk, int d) {
        return (scores ? (long) lq * lk : 0) + (d < GEMM_MIN_D ? 2L * d * lk : 0);
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
     * Shared with the plain softmax op. exp by {@link FastExp} (vectorised); the sum in double, in order.
     */
    static void softmaxRow(float[] a, int off, int allowed, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < allowed; j++) max = Math.max(max, a[off + j]);
        for (int j = 0; j < allowed; j++) a[off + j] = FastExp.exp(a[off + j] - max);
        // four interleaved partial sums: independent add chains, fixed order
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
