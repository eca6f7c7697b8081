package esdnative.backend.cpu;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;

import static esdnative.backend.cpu.GemmKernel.MR;

/**
 * Attention of one head without its [lq, lk] probability matrix, FlashAttention's scheme on the CPU: a block of
 * {@link #BQ} queries meets the keys {@link #BK} at a time; each score tile is exponentiated against a running
 * per-query maximum, and the partial output and sum are rescaled when that maximum grows (online softmax). The
 * working set is a few BK × BQ tiles (L2) instead of lq × lk scores (64 MiB per head at 4096 tokens).
 * The forward keeps per query the log-sum-exp of its scaled scores; the backward recomputes each tile's
 * probabilities from q, k and it, P = exp(s − lse), and with D = rowsum(dOut ⊙ out) (the softmax gradient's
 * rowsum(dP ⊙ P)): dv += Pᵀ dOut, dS = P ⊙ (dOut vᵀ − D), dq += scale · dS k, dk += scale · dSᵀ q. Not causal.
 *
 * <p>Every product runs through {@link GemmKernel#accumulate}: a tile is an array of rows, key-major (tT[j][i],
 * key j of the block, query i) where the softmax and dq run along queries, and transposed to query-major where dk
 * and dv sum over queries. q, k and v are packed once per head into the kernel's 4-wide strips. One task runs one
 * head, its sums in a fixed order: the result does not depend on the thread count.
 * q, k, v, out and their gradients are one head's [tokens, d] blocks at an offset with row stride ld.
 */
final class FusedAttention {
    /** queries per block: the kernel's rows are this long (vectorised along queries). */
    static final int BQ = 128;
    /** keys per block: a BK × BQ tile is 64 KiB; the backward's four stay in L2. */
    static final int BK = 128;

    private FusedAttention() {}

    /**
     * out[i] = Σ_j softmax_j(scale · q[i] · k[j]) v[j]; lse[lseOff + i] = log Σ_j exp(scale · q[i] · k[j]) when lse
     * is not null.
     */
    static void forward(float[] o, int oOff, float[] lse, int lseOff, float[] qa, int qOff, float[] ka, int kOff,
                        float[] va, int vOff, int ld, int lq, int lk, int d, float scale) {
        Scratch s = Scratch.acquire(lk, d);
        int dPad = ceil4(d);
        packKeyStrips(s.kStrips, ka, kOff, ld, lk, d);
        packChannelStrips(s.vChannels, va, vOff, ld, lk, d);
        float[] max = s.max, newMax = s.newMax, rescale = s.rescale;
        double[] sum = s.sum;
        for (int i0 = 0; i0 < lq; i0 += BQ) {
            int n = Math.min(BQ, lq - i0);
            packTransposed(s.qT, qa, qOff + i0 * ld, ld, scale, n, d);
            Arrays.fill(max, 0, n, Float.NEGATIVE_INFINITY);
            Arrays.fill(sum, 0, n, 0.0);
            for (float[][] strip : s.outT) for (float[] row : strip) Arrays.fill(row, 0, n, 0f);
            for (int kb = 0, j0 = 0; j0 < lk; kb++, j0 += BK) {
                int keys = Math.min(BK, lk - j0), kPad = ceil4(keys);
                scores(s, j0, kPad, n, dPad);
                // the new running max, the factor exp(old − new) for what was summed so far, then P = exp(s − max)
                System.arraycopy(max, 0, newMax, 0, n);
                for (int j = 0; j < keys; j++) maxInto(newMax, s.tile[j], n);
                for (int i = 0; i < n; i++) rescale[i] = (float) Math.exp(max[i] - newMax[i]);
                System.arraycopy(newMax, 0, max, 0, n);
                for (int j = 0; j < keys; j++) FastExp.expShifted(s.tile[j], max, 0, n);
                for (int j = keys; j < kPad; j++) Arrays.fill(s.tile[j], 0, n, 0f);   // padding keys
                scaleInto(sum, rescale, n);
                for (int j = 0; j < keys; j++) addInto(sum, s.tile[j], n);
                // outT[c] = outT[c] · rescale + Σ_j v[j, c] P[j]
                for (float[][] strip : s.outT) for (float[] row : strip) multiplyInto(row, rescale, n);
                float[][] vStrips = s.vChannels[kb];
                for (int cs = 0; cs < dPad / MR; cs++) GemmKernel.accumulate(s.outT[cs], vStrips[cs], s.tile, n, kPad);
            }
            for (int i = 0; i < n; i++) s.inv[i] = (float) (1 / sum[i]);
            for (int i = 0; i < n; i++) {
                int row = oOff + (i0 + i) * ld;
                for (int c = 0; c < d; c++) o[row + c] = s.outT[c / MR][c % MR][i] * s.inv[i];
            }
            if (lse != null) {
                for (int i = 0; i < n; i++) lse[lseOff + i0 + i] = (float) (max[i] + Math.log(sum[i]));
            }
        }
        Scratch.release(s);
    }

    /**
     * dq (from dqOff), dk (from dkOff) and dv (from dvOff) += the gradients of {@link #forward} for dOut; null
     * gradients are skipped. out and lse are what the forward gave.
     */
    static void backward(float[] dq, int dqOff, float[] dk, int dkOff, float[] dv, int dvOff, float[] dy, int dyOff,
                         float[] qa, int qOff, float[] ka, int kOff, float[] va, int vOff, float[] oa, int oOff,
                         float[] lse, int lseOff, int ld, int lq, int lk, int d, float scale) {
        Scratch s = Scratch.acquire(lk, d);
        int dPad = ceil4(d), strips = dPad / MR, keyBlocks = ceilDiv(lk, BK);
        boolean scores = dq != null || dk != null;
        packKeyStrips(s.kStrips, ka, kOff, ld, lk, d);
        packKeyStrips(s.vStrips, va, vOff, ld, lk, d);
        packChannelStrips(s.kChannels, ka, kOff, ld, lk, d);
        for (int kb = 0; kb < keyBlocks; kb++) {
            for (int cs = 0; cs < strips; cs++) {
                for (int r = 0; r < MR; r++) {
                    Arrays.fill(s.dkT[kb][cs][r], 0f);
                    Arrays.fill(s.dvT[kb][cs][r], 0f);
                }
            }
        }
        float[] rowLse = s.max, rowDot = s.newMax;
        for (int i0 = 0; i0 < lq; i0 += BQ) {
            int n = Math.min(BQ, lq - i0), nPad = ceil4(n);
            packTransposed(s.qT, qa, qOff + i0 * ld, ld, scale, n, d);
            packTransposed(s.dyT, dy, dyOff + i0 * ld, ld, 1f, n, d);
            packRowStrips(s.qRows, qa, qOff + i0 * ld, ld, n, nPad, d);
            packRowStrips(s.dyRows, dy, dyOff + i0 * ld, ld, n, nPad, d);
            for (int i = 0; i < n; i++) {
                rowLse[i] = lse[lseOff + i0 + i];
                double dot = 0;
                int yRow = dyOff + (i0 + i) * ld, oRow = oOff + (i0 + i) * ld;
                for (int c = 0; c < d; c++) dot += (double) dy[yRow + c] * oa[oRow + c];
                rowDot[i] = (float) dot;
            }
            for (float[][] strip : s.dqT) for (float[] row : strip) Arrays.fill(row, 0, n, 0f);
            for (int kb = 0, j0 = 0; j0 < lk; kb++, j0 += BK) {
                int keys = Math.min(BK, lk - j0), kPad = ceil4(keys);
                // the tile's probabilities, recomputed: P = exp(scale · k qᵀ − lse)
                scores(s, j0, kPad, n, dPad);
                for (int j = 0; j < keys; j++) FastExp.expShifted(s.tile[j], rowLse, 0, n);
                for (int j = keys; j < kPad; j++) Arrays.fill(s.tile[j], 0, n, 0f);
                if (dv != null) {
                    transpose(s.tileByQuery, s.tile, keys, n, nPad);
                    for (int cs = 0; cs < strips; cs++) {
                        GemmKernel.accumulate(s.dvT[kb][cs], s.dyRows[cs], s.tileByQuery, keys, nPad);
                    }
                }
                if (!scores) continue;
                // dPᵀ[j] = Σ_c v[j, c] dOutᵀ[c]; dSᵀ[j] = P[j] ⊙ (dPᵀ[j] − D)
                for (int js = 0; js < kPad / MR; js++) {
                    float[][] acc = s.gradStrips[js];
                    for (float[] row : acc) Arrays.fill(row, 0, n, 0f);
                    GemmKernel.accumulate(acc, s.vStrips[j0 / MR + js], s.dyT, n, dPad);
                }
                for (int j = 0; j < kPad; j++) softmaxGradient(s.grad[j], s.tile[j], rowDot, n);
                if (dq != null) {
                    for (int cs = 0; cs < strips; cs++) GemmKernel.accumulate(s.dqT[cs], s.kChannels[kb][cs], s.grad, n, kPad);
                }
                if (dk != null) {
                    transpose(s.tileByQuery, s.grad, keys, n, nPad);
                    for (int cs = 0; cs < strips; cs++) {
                        GemmKernel.accumulate(s.dkT[kb][cs], s.qRows[cs], s.tileByQuery, keys, nPad);
                    }
                }
            }
            if (dq != null) {
                for (int i = 0; i < n; i++) {
                    int row = dqOff + (i0 + i) * ld;
                    for (int c = 0; c < d; c++) dq[row + c] += scale * s.dqT[c / MR][c % MR][i];
                }
            }
        }
        for (int kb = 0, j0 = 0; j0 < lk; kb++, j0 += BK) {
            int keys = Math.min(BK, lk - j0);
            for (int j = 0; j < keys; j++) {
                for (int c = 0; c < d; c++) {
                    if (dk != null) dk[dkOff + (j0 + j) * ld + c] += scale * s.dkT[kb][c / MR][c % MR][j];
                    if (dv != null) dv[dvOff + (j0 + j) * ld + c] += s.dvT[kb][c / MR][c % MR][j];
                }
            }
        }
        Scratch.release(s);
    }

    /** tile[j] (j < kPad) = Σ_c kStrips · qT: the scaled scores of keys j0 + j against the block's n queries. */
    private static void scores(Scratch s, int j0, int kPad, int n, int dPad) {
        for (int js = 0; js < kPad / MR; js++) {
            float[][] acc = s.tileStrips[js];
            for (float[] row : acc) Arrays.fill(row, 0, n, 0f);
            GemmKernel.accumulate(acc, s.kStrips[j0 / MR + js], s.qT, n, dPad);
        }
    }

    /** In place along queries: ds = p ⊙ (ds − dot). */
    private static void softmaxGradient(float[] ds, float[] p, float[] dot, int n) {
        for (int i = 0; i < n; i++) ds[i] = p[i] * (ds[i] - dot[i]);
    }

    /**
     * byQuery[i][j] = byKey[j][i] for j < keys, i < n; rows n ≤ i < nPad are zeroed (the kernel's padding). Eight keys
     * a pass, so each row of byQuery is written 32 bytes at a time rather than touched once per key.
     */
    private static void transpose(float[][] byQuery, float[][] byKey, int keys, int n, int nPad) {
        int j = 0;
        for (; j + 7 < keys; j += 8) {
            float[] c0 = byKey[j], c1 = byKey[j + 1], c2 = byKey[j + 2], c3 = byKey[j + 3];
            float[] c4 = byKey[j + 4], c5 = byKey[j + 5], c6 = byKey[j + 6], c7 = byKey[j + 7];
            for (int i = 0; i < n; i++) {
                float[] row = byQuery[i];
                row[j] = c0[i];
                row[j + 1] = c1[i];
                row[j + 2] = c2[i];
                row[j + 3] = c3[i];
                row[j + 4] = c4[i];
                row[j + 5] = c5[i];
                row[j + 6] = c6[i];
                row[j + 7] = c7[i];
            }
        }
        for (; j < keys; j++) {
            float[] column = byKey[j];
            for (int i = 0; i < n; i++) byQuery[i][j] = column[i];
        }
        for (int i = n; i < nPad; i++) Arrays.fill(byQuery[i], 0, keys, 0f);
    }

    /**
     * strips[t][p · 4 + r] = src[(4t + r)-th token, channel p]: tokens four at a time, channels along the strip,
     * zero beyond the tokens and channels (the kernel's left operand for scores and dP).
     */
    private static void packKeyStrips(float[][] strips, float[] src, int off, int ld, int tokens, int d) {
        int dPad = ceil4(d);
        for (int t = 0; t < ceilDiv(tokens, MR); t++) {
            float[] strip = strips[t];
            Arrays.fill(strip, 0, dPad * MR, 0f);
            for (int r = 0; r < MR && MR * t + r < tokens; r++) {
                int row = off + (MR * t + r) * ld;
                for (int c = 0; c < d; c++) strip[c * MR + r] = src[row + c];
            }
        }
    }

    /**
     * blocks[kb][cs][p · 4 + r] = src[token kb·BK + p, channel 4cs + r]: per key block, channels four at a time,
     * tokens along the strip, zero beyond (the kernel's left operand for P·v and dS·k).
     */
    private static void packChannelStrips(float[][][] blocks, float[] src, int off, int ld, int tokens, int d) {
        for (int kb = 0, j0 = 0; j0 < tokens; kb++, j0 += BK) {
            packRowStrips(blocks[kb], src, off + j0 * ld, ld, Math.min(BK, tokens - j0), BK, d);
        }
    }

    /** strips[cs][p · 4 + r] = src[row p, channel 4cs + r] for p < rows, zero up to padRows and beyond d. */
    private static void packRowStrips(float[][] strips, float[] src, int off, int ld, int rows, int padRows, int d) {
        for (int cs = 0; cs < ceil4(d) / MR; cs++) {
            float[] strip = strips[cs];
            Arrays.fill(strip, 0, padRows * MR, 0f);
            for (int p = 0; p < rows; p++) {
                int row = off + p * ld;
                for (int r = 0; r < MR && MR * cs + r < d; r++) strip[p * MR + r] = src[row + MR * cs + r];
            }
        }
    }

    /** rows[c][t] = factor · src[off + t · ld + c] for t < tokens, c < d; rows d ≤ c < ceil4(d) are zeroed. */
    private static void packTransposed(float[][] rows, float[] src, int off, int ld, float factor, int tokens, int d) {
        for (int t = 0; t < tokens; t++) {
            for (int c = 0; c < d; c++) rows[c][t] = factor * src[off + t * ld + c];
        }
        for (int c = d; c < ceil4(d); c++) Arrays.fill(rows[c], 0, tokens, 0f);
    }

    /** max[i] = max(max[i], row[i]) for i < n. */
    private static void maxInto(float[] max, float[] row, int n) {
        for (int i = 0; i < n; i++) max[i] = Math.max(max[i], row[i]);
    }

    /** sum[i] *= factor[i] for i < n. */
    private static void scaleInto(double[] sum, float[] factor, int n) {
        for (int i = 0; i < n; i++) sum[i] *= factor[i];
    }

    /** sum[i] += row[i] for i < n. */
    private static void addInto(double[] sum, float[] row, int n) {
        for (int i = 0; i < n; i++) sum[i] += row[i];
    }

    /** row[i] *= factor[i] for i < n. */
    private static void multiplyInto(float[] row, float[] factor, int n) {
        for (int i = 0; i < n; i++) row[i] *= factor[i];
    }

    private static int ceil4(int x) { return ceilDiv(x, MR) * MR; }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    /**
     * One task's arrays, pooled (none allocated once warm; a pooled set too small is replaced by one sized for
     * both). Tiles are [BK][BQ] rows, also seen four rows at a time as the kernel's accumulator strips; per-head
     * packs are sized by lk and d.
     */
    private static final class Scratch {
        private static final ConcurrentLinkedDeque<Scratch> POOL = new ConcurrentLinkedDeque<>();
        final int lk, d;
        /** scores, then probabilities; and dP, then dS: [BK][BQ], the same rows as the strips [BK/4][4][BQ] */
        final float[][] tile, grad;
        final float[][][] tileStrips, gradStrips;
        /** a tile transposed, [BQ][BK] */
        final float[][] tileByQuery;
        /** the block's scaled queries and dOut, transposed: [ceil4(d)][BQ] */
        final float[][] qT, dyT;
        /** the output and dq of a query block, transposed, as strips [ceil4(d)/4][4][BQ] */
        final float[][][] outT, dqT;
        /** k and v, four keys a strip: [ceil(lk/4)][ceil4(d)·4] */
        final float[][] kStrips, vStrips;
        /** v (forward) and k (backward) per key block, four channels a strip: [key blocks][ceil4(d)/4][BK·4] */
        final float[][][] vChannels, kChannels;
        /** the block's q and dOut, four channels a strip: [ceil4(d)/4][BQ·4] */
        final float[][] qRows, dyRows;
        /** dk and dv per key block, transposed, as strips: [key blocks][ceil4(d)/4][4][BK] */
        final float[][][][] dkT, dvT;
        final float[] max, newMax, rescale, inv;
        final double[] sum;

        private Scratch(int lk, int d) {
            this.lk = lk;
            this.d = d;
            int dPad = ceil4(d), strips = dPad / MR, keyBlocks = ceilDiv(lk, BK);
            tileStrips = new float[BK / MR][MR][BQ];
            gradStrips = new float[BK / MR][MR][BQ];
            tile = rows(tileStrips);
            grad = rows(gradStrips);
            tileByQuery = new float[BQ][BK];
            qT = new float[dPad][BQ];
            dyT = new float[dPad][BQ];
            outT = new float[strips][MR][BQ];
            dqT = new float[strips][MR][BQ];
            kStrips = new float[ceilDiv(lk, MR)][dPad * MR];
            vStrips = new float[ceilDiv(lk, MR)][dPad * MR];
            vChannels = new float[keyBlocks][strips][BK * MR];
            kChannels = new float[keyBlocks][strips][BK * MR];
            qRows = new float[strips][BQ * MR];
            dyRows = new float[strips][BQ * MR];
            dkT = new float[keyBlocks][strips][MR][BK];
            dvT = new float[keyBlocks][strips][MR][BK];
            max = new float[BQ];
            newMax = new float[BQ];
            rescale = new float[BQ];
            inv = new float[BQ];
            sum = new double[BQ];
        }

        /** the strips' rows in order, one array of rows */
        private static float[][] rows(float[][][] strips) {
            float[][] rows = new float[strips.length * MR][];
            for (int t = 0; t < strips.length; t++) System.arraycopy(strips[t], 0, rows, t * MR, MR);
            return rows;
        }

        static Scratch acquire(int lk, int d) {
            Scratch s = POOL.poll();
            if (s == null) return new Scratch(lk, d);
            return s.lk >= lk && s.d >= d ? s : new Scratch(Math.max(lk, s.lk), Math.max(d, s.d));
        }

        static void release(Scratch s) { POOL.push(s); }
    }
}
