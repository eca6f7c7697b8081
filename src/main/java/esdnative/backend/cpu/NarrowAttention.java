package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * Attention of one head narrower than {@link AttentionOps#GEMM_MIN_D} (small test models: d = 4 or 8), where a
 * GEMM would spend its time packing and per-query loops over d would be scalar dot products.
 * Every hot loop instead runs along a long index with each operand a separate array, so C2 vectorises it:
 * <ul>
 *   <li>forward, along queries i, a block of queries at a time: per key j a row of scores sT[j][i], the softmax
 *       down the columns (elementwise max, exp and sum over the rows j), out = Σ_j v[j, c] · sT[j] per channel;</li>
 *   <li>backward, along keys j per query i (dv, dP, the softmax gradient dS, dk, as the saved probabilities are
 *       laid out), and dq along queries from dS transposed.</li>
 * </ul>
 * Sums over keys and over channels run in ascending order whatever the thread count (determinism).
 * q, k, v, out and their gradients are one head's [tokens, d] blocks at an offset with row stride ld.
 */
final class NarrowAttention {
    /** queries per block: long enough for C2's unrolled vector loops, short enough that the scores stay in L2 */
    static final int QUERY_BLOCK = 256;
    /** queries the backward takes at a time along keys */
    private static final int ROWS = 4;
    /** rows of a {@link #combineChannels} chunk: 16 rows of a query block fill a quarter of L1 */
    private static final int ROW_CHUNK = 16;

    private NarrowAttention() {}

    /**
     * out[i] = Σ_j softmax_j(scale · q[i] · k[j], j ≤ i when causal) v[j]; probs[i][j] (lq × lk from pOff) receives
     * the probabilities when pa is not null.
     */
    static void forward(float[] o, int oOff, float[] pa, int pOff, float[] qa, int qOff, float[] ka, int kOff,
                        float[] va, int vOff, int ld, int lq, int lk, int d, float scale, boolean causal) {
        Scratch s = Scratch.acquire(lk, d);
        float[][] scores = s.keyRows, qT = s.channelRows;
        float[] max = s.max, inv = s.inv;
        double[] sum = s.sum;
        for (int i0 = 0; i0 < lq; i0 += QUERY_BLOCK) {
            int n = Math.min(QUERY_BLOCK, lq - i0);
            int keys = causal ? Math.min(lk, i0 + n) : lk;   // keys seen by some query of the block
            packRows(qT, qa, qOff + i0 * ld, ld, scale, n, d);
            // scores[j][ii] = Σ_c k[j, c] qT[c][ii]; max down the columns over the keys each query sees
            Arrays.fill(max, 0, n, Float.NEGATIVE_INFINITY);
            for (int j = 0; j < keys; j++) {
                float[] sj = scores[j];
                combineRows(sj, ka, kOff + j * ld, 1, qT, d, n);
                maxInto(max, sj, firstQuery(j, i0, causal), n);
            }
            // scores[j] = exp(scores[j] − max) where query sees key j, else 0; column sums in double
            Arrays.fill(sum, 0, n, 0.0);
            for (int j = 0; j < keys; j++) {
                float[] sj = scores[j];
                int first = firstQuery(j, i0, causal);
                FastExp.expShifted(sj, max, first, n);
                Arrays.fill(sj, 0, first, 0f);
                addInto(sum, sj, n);
            }
            reciprocals(inv, sum, n);
            // out[i0 + ii, c] = Σ_j v[j, c] scores[j][ii] / sum[ii]
            float[][] outT = qT;   // the scaled queries are no longer needed
            combineChannels(outT, d, va, vOff, ld, scores, keys, n);
            storeRows(o, oOff + i0 * ld, ld, outT, inv, n, d);
            if (pa != null) writeProbs(pa, pOff + i0 * lk, lk, scores, keys, inv, n);
        }
        Scratch.release(s);
    }

    /**
     * dv += Pᵀ dOut; dP = dOut vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)); dq += scale · dS k; dk += scale · dSᵀ q
     * (null gradients are skipped; dq's head starts qRow into dq, dk's and dv's kRow into theirs).
     * Masked entries have P = 0, hence dS = 0: no mask needed.
     * Along keys, {@link #ROWS} queries at a time (the saved probabilities' layout): dvT[c] += Σ_r dOut[i_r, c] · P_r,
     * dS_r, dkT[c] += Σ_r q[i_r, c] · dS_r, with dk and dv summed over all queries in scratch and added once;
     * the dS rows are also stored transposed, dsT[j][ii], so that dq = Σ_j k[j, c] · dsT[j] runs along queries.
     */
    static void backward(Tensor dq, Tensor dk, Tensor dv, int qRow, int kRow, float[] dy, int dyOff,
                         float[] qa, int qOff, float[] ka, int kOff, float[] va, int vOff, float[] pa, int pOff,
                         int ld, int lq, int lk, int d, float scale) {
        float[] dqa = dq == null ? null : array(dq), dka = dk == null ? null : array(dk);
        float[] dva = dv == null ? null : array(dv);
        Scratch s = Scratch.acquire(lk, d);
        float[][] vT = s.vT, dkT = s.dkT, dvT = s.dvT, dsT = s.keyRows, dqT = s.channelRows, p = s.pRows, ds = s.dsRows;
        float[] product = s.product;
        packRows(vT, va, vOff, ld, 1f, lk, d);
        for (int c = 0; c < d; c++) {
            Arrays.fill(dkT[c], 0, lk, 0f);
            Arrays.fill(dvT[c], 0, lk, 0f);
        }
        for (int i0 = 0; i0 < lq; i0 += QUERY_BLOCK) {
            int n = Math.min(QUERY_BLOCK, lq - i0);
            for (int ii = 0; ii < n; ii += ROWS) {
                int rows = Math.min(ROWS, n - ii), i = i0 + ii;
                for (int r = 0; r < rows; r++) System.arraycopy(pa, pOff + (i + r) * lk, p[r], 0, lk);
                if (dva != null) {
                    for (int c = 0; c < d; c++) addCombination(dvT[c], dy, dyOff + i * ld + c, ld, p, 0, rows, lk);
                }
                if (dqa == null && dka == null) continue;
                for (int r = 0; r < rows; r++) {
                    combineRows(ds[r], dy, dyOff + (i + r) * ld, 1, vT, d, lk);
                    softmaxGradient(ds[r], p[r], product, lk);
                }
                if (dka != null) {
                    for (int c = 0; c < d; c++) addCombination(dkT[c], qa, qOff + i * ld + c, ld, ds, 0, rows, lk);
                }
                if (dqa != null) transposeRows(dsT, ii, ds, rows, lk);
            }
            if (dqa != null) {
                combineChannels(dqT, d, ka, kOff, ld, dsT, lk, n);
                addRows(dqa, offset(dq) + qRow + i0 * ld, ld, scale, dqT, n, d);
            }
        }
        if (dka != null) addRows(dka, offset(dk) + kRow, ld, scale, dkT, lk, d);
        if (dva != null) addRows(dva, offset(dv) + kRow, ld, 1f, dvT, lk, d);
        Scratch.release(s);
    }

    /** dst[j][at + r] = rows[r][j] for r < count, j < n: four rows a pass, so each dst[j] is loaded once per four. */
    private static void transposeRows(float[][] dst, int at, float[][] rows, int count, int n) {
        int r = 0;
        for (; r + 3 < count; r += 4) {
            float[] r0 = rows[r], r1 = rows[r + 1], r2 = rows[r + 2], r3 = rows[r + 3];
            int c0 = at + r;
            for (int j = 0; j < n; j++) {
                float[] column = dst[j];
                column[c0] = r0[j];
                column[c0 + 1] = r1[j];
                column[c0 + 2] = r2[j];
                column[c0 + 3] = r3[j];
            }
        }
        for (; r < count; r++) {
            for (int j = 0; j < n; j++) dst[j][at + r] = rows[r][j];
        }
    }

    /**
     * probs[ii][j] (rows of lk from pOff) = scores[j][ii] · inv[ii] for j < keys, 0 beyond (masked), ii < n;
     * four queries a pass over the keys, so each scores[j] is loaded once per four.
     */
    private static void writeProbs(float[] pa, int pOff, int lk, float[][] scores, int keys, float[] inv, int n) {
        int ii = 0;
        for (; ii + 3 < n; ii += 4) {
            int p0 = pOff + ii * lk, p1 = p0 + lk, p2 = p1 + lk, p3 = p2 + lk;
            float inv0 = inv[ii], inv1 = inv[ii + 1], inv2 = inv[ii + 2], inv3 = inv[ii + 3];
            for (int j = 0; j < keys; j++) {
                float[] column = scores[j];
                pa[p0 + j] = column[ii] * inv0;
                pa[p1 + j] = column[ii + 1] * inv1;
                pa[p2 + j] = column[ii + 2] * inv2;
                pa[p3 + j] = column[ii + 3] * inv3;
            }
        }
        for (; ii < n; ii++) {
            int row = pOff + ii * lk;
            for (int j = 0; j < keys; j++) pa[row + j] = scores[j][ii] * inv[ii];
        }
        for (ii = 0; ii < n; ii++) Arrays.fill(pa, pOff + ii * lk + keys, pOff + (ii + 1) * lk, 0f);
    }

    /**
     * In place over one row of n keys: ds = p ⊙ dp − p · Σ_j p[j] dp[j], the softmax gradient (product: scratch).
     * The sum in float, in eight interleaved partial sums (a fixed order).
     */
    private static void softmaxGradient(float[] ds, float[] p, float[] product, int n) {
        for (int j = 0; j < n; j++) product[j] = p[j] * ds[j];
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int j = 0;
        for (; j + 7 < n; j += 8) {
            s0 += product[j];
            s1 += product[j + 1];
            s2 += product[j + 2];
            s3 += product[j + 3];
            s4 += product[j + 4];
            s5 += product[j + 5];
            s6 += product[j + 6];
            s7 += product[j + 7];
        }
        for (; j < n; j++) s0 += product[j];
        float dot = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        for (j = 0; j < n; j++) ds[j] = Math.fma(-dot, p[j], product[j]);
    }

    /** block-local index of the first query of the block at i0 that sees key j */
    private static int firstQuery(int j, int i0, boolean causal) {
        return causal ? Math.max(0, j - i0) : 0;
    }

    /** out[x] = Σ_r w[wOff + r · wStride] · rows[r][x] for x < n, r < count. */
    private static void combineRows(float[] out, float[] w, int wOff, int wStride, float[][] rows, int count, int n) {
        Arrays.fill(out, 0, n, 0f);
        addCombination(out, w, wOff, wStride, rows, 0, count, n);
    }

    /**
     * outT[c][x] = Σ_r w[wOff + r · ld + c] · rows[r][x] for c < d, x < n, r < count: the rows weighted by a
     * [count, d] block of w (row stride ld), {@link #ROW_CHUNK} rows at a time for every channel, so that the
     * chunk is read from L1 d times rather than all rows from L2. The sums run in the same order as unchunked.
     */
    private static void combineChannels(float[][] outT, int d, float[] w, int wOff, int ld, float[][] rows, int count,
                                        int n) {
        for (int c = 0; c < d; c++) Arrays.fill(outT[c], 0, n, 0f);
        for (int r0 = 0; r0 < count; r0 += ROW_CHUNK) {
            int r1 = Math.min(count, r0 + ROW_CHUNK);
            for (int c = 0; c < d; c++) addCombination(outT[c], w, wOff + c, ld, rows, r0, r1, n);
        }
    }

    /**
     * out[x] += Σ_r w[wOff + r · wStride] · rows[r][x] for x < n, over from ≤ r < to in ascending order, four rows a
     * pass (each a separate array, all indexed by x: C2 vectorises the fma chain).
     */
    private static void addCombination(float[] out, float[] w, int wOff, int wStride, float[][] rows, int from, int to,
                                       int n) {
        int r = from;
        for (; r + 3 < to; r += 4) {
            float w0 = w[wOff + r * wStride], w1 = w[wOff + (r + 1) * wStride];
            float w2 = w[wOff + (r + 2) * wStride], w3 = w[wOff + (r + 3) * wStride];
            float[] x0 = rows[r], x1 = rows[r + 1], x2 = rows[r + 2], x3 = rows[r + 3];
            for (int x = 0; x < n; x++) {
                out[x] = Math.fma(w3, x3[x], Math.fma(w2, x2[x], Math.fma(w1, x1[x], Math.fma(w0, x0[x], out[x]))));
            }
        }
        for (; r < to; r++) {
            float w0 = w[wOff + r * wStride];
            float[] x0 = rows[r];
            for (int x = 0; x < n; x++) out[x] = Math.fma(w0, x0[x], out[x]);
        }
    }

    /** max[x] = max(max[x], row[x]) for from ≤ x < n. */
    private static void maxInto(float[] max, float[] row, int from, int n) {
        for (int x = from; x < n; x++) max[x] = Math.max(max[x], row[x]);
    }

    /** sum[x] += row[x] for x < n. */
    private static void addInto(double[] sum, float[] row, int n) {
        for (int x = 0; x < n; x++) sum[x] += row[x];
    }

    /** inv[x] = 1 / sum[x] for x < n. */
    private static void reciprocals(float[] inv, double[] sum, int n) {
        for (int x = 0; x < n; x++) inv[x] = (float) (1 / sum[x]);
    }

    /**
     * rows[c][t] = factor · src[sOff + t·ld + c]: a head's [tokens, d] block transposed to token-indexed rows.
     * Each small loop of the narrow path is a method of its own: called thousands of times, it is compiled on its
     * own, never as the entry loop of an on-stack-replacement compile of its caller (which C2 does not vectorise).
     */
    private static void packRows(float[][] rows, float[] src, int sOff, int ld, float factor, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) rows[c][t] = factor * src[sOff + t * ld + c];
        }
    }

    /** dst[dOff + t·ld + c] = rows[c][t] · factors[t]: token-indexed rows back to a head's [tokens, d] block. */
    private static void storeRows(float[] dst, int dOff, int ld, float[][] rows, float[] factors, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) dst[dOff + t * ld + c] = rows[c][t] * factors[t];
        }
    }

    /** dst[dOff + t·ld + c] += factor · rows[c][t]. */
    private static void addRows(float[] dst, int dOff, int ld, float factor, float[][] rows, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) dst[dOff + t * ld + c] += factor * rows[c][t];
        }
    }

    /**
     * One task's arrays, pooled (no allocation once warm; a pooled set too small for a call is replaced by one
     * sized for both, so alternating shapes settle on the largest). Forward: keyRows = scores [lk][QUERY_BLOCK],
     * channelRows = scaled queries, then outputs [d][QUERY_BLOCK]; backward: keyRows = dS transposed,
     * channelRows = dq transposed, key-indexed rows [d][lk] of v, dk, dv and [ROWS][lk] of P and dS.
     */
    private static final class Scratch {
        private static final ConcurrentLinkedDeque<Scratch> POOL = new ConcurrentLinkedDeque<>();
        final int lk, d;
        final float[][] keyRows, channelRows, vT, dkT, dvT, pRows, dsRows;
        final float[] max, inv, product;
        final double[] sum;

        private Scratch(int lk, int d) {
            this.lk = lk;
            this.d = d;
            keyRows = new float[lk][QUERY_BLOCK];
            channelRows = new float[d][QUERY_BLOCK];
            vT = new float[d][lk];
            dkT = new float[d][lk];
            dvT = new float[d][lk];
            max = new float[QUERY_BLOCK];
            inv = new float[QUERY_BLOCK];
            sum = new double[QUERY_BLOCK];
            pRows = new float[ROWS][lk];
            dsRows = new float[ROWS][lk];
            product = new float[lk];
        }

        static Scratch acquire(int lk, int d) {
            Scratch s = POOL.poll();
            if (s == null) return new Scratch(lk, d);
            return s.lk >= lk && s.d >= d ? s : new Scratch(Math.max(lk, s.lk), Math.max(d, s.d));
        }

        static void release(Scratch s) { POOL.push(s); }
    }
}
