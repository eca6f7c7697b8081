package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * Multi-head scaled-dot-product attention on the [b, tokens, heads·d] layout: head h of sample b is the
 * [tokens, d] block starting at column h·d with row stride heads·d, so each (b, h) is three strided GEMMs and
 * a softmax, with no reshuffling of q, k, v. (b, h) pairs run in parallel; each is computed by one task.
 */
final class AttentionOps {
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
            float[] p = pa != null ? pa : new float[lq * lk];
            int pOff = pa != null ? offset(probs) + bh * lq * lk : 0;
            // scores[lq, lk] = scale · q_h k_hᵀ
            Gemm.sgemm(false, true, lq, lk, d, scale, qa, qOff, ld, ka, kOff, ld, 0f, p, pOff, lk);
            for (int i = 0; i < lq; i++) {
                int allowed = causal ? Math.min(lk, i + 1) : lk;
                softmaxRow(p, pOff + i * lk, allowed, lk);
            }
            // out_h[lq, d] = probs · v_h
            Gemm.sgemm(false, false, lq, d, lk, 1f, p, pOff, lk, va, vOff, ld, 0f, o, oOff, ld);
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
            if (dv != null) {
                Gemm.sgemm(true, false, lk, d, lq, 1f, pa, pOff, lk, dy, dyOff, ld, 1f, array(dv), offset(dv) + kRow, ld);
            }
            if (dq == null && dk == null) return;
            float[] ds = new float[lq * lk];
            Gemm.sgemm(false, true, lq, lk, d, 1f, dy, dyOff, ld, va, offset(v) + kRow, ld, 0f, ds, 0, lk);
            for (int i = 0; i < lq; i++) {
                int row = i * lk;
                double dot = 0;
                for (int j = 0; j < lk; j++) dot += (double) ds[row + j] * pa[pOff + row + j];
                for (int j = 0; j < lk; j++) ds[row + j] = (float) (pa[pOff + row + j] * (ds[row + j] - dot));
            }
            if (dq != null) {
                Gemm.sgemm(false, false, lq, d, lk, scale, ds, 0, lk, ka, offset(k) + kRow, ld, 1f, array(dq), offset(dq) + qRow, ld);
            }
            if (dk != null) {
                Gemm.sgemm(true, false, lk, d, lq, scale, ds, 0, lk, qa, offset(q) + qRow, ld, 1f, array(dk), offset(dk) + kRow, ld);
            }
        });
    }

    /**
     * In place: row[0, allowed) = softmax(row[0, allowed)) with max subtraction, row[allowed, len) = 0.
     * Shared with the plain softmax op.
     */
    static void softmaxRow(float[] a, int off, int allowed, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < allowed; j++) max = Math.max(max, a[off + j]);
        double sum = 0;
        for (int j = 0; j < allowed; j++) {
            float e = (float) Math.exp(a[off + j] - max);
            a[off + j] = e;
            sum += e;
        }
        for (int j = 0; j < allowed; j++) a[off + j] = (float) (a[off + j] / sum);
        for (int j = allowed; j < len; j++) a[off + j] = 0f;
    }
}
