package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import java.util.Arrays;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;
import static esdnative.backend.cpu.DoubleChunks.CHUNK;
import static esdnative.backend.cpu.DoubleChunks.narrow;
import static esdnative.backend.cpu.DoubleChunks.scratch;
import static esdnative.backend.cpu.DoubleChunks.widen;

/**
 * GroupNorm and LayerNorm as torch computes them: biased variance, y = (x - mean) · rstd · gamma + beta,
 * rstd = 1/sqrt(var + eps) (https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html).
 * Statistics are accumulated in double (two passes: mean, then squared deviations).
 * Both are one "normalise a contiguous segment" kernel: GroupNorm's segment is a group's cg·hw elements with
 * gamma indexed by channel, LayerNorm's is a row with gamma indexed by column.
 */
final class NormOps {
    /** work (Parallel.MIN_PARALLEL_WORK's units) of a normalised element: double arithmetic and two or three passes */
    private static final int NORMALISE_WORK = 12;

    private NormOps() {}

    static void groupNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int n, int c, int hw, int groups, float eps) {
        checkGroups(c, groups);
        int cg = c / groups;
        forwardSegments(out, mean, rstd, in, gamma, beta, n * groups, cg * hw, hw,
                seg -> (seg % groups) * cg, eps);
    }

    static void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int rows, int cols, float eps) {
        forwardSegments(out, mean, rstd, in, gamma, beta, rows, cols, 1, seg -> 0, eps);
    }

    static void groupNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int n, int c, int hw, int groups) {
        checkGroups(c, groups);
        int cg = c / groups;
        if (dIn != null) {
            backwardInput(dIn, dOut, in, mean, rstd, gamma, n * groups, cg * hw, hw, seg -> (seg % groups) * cg);
        }
        if (dGamma == null && dBeta == null) return;
        // per channel: Σ over samples and pixels, samples in order
        float[] dy = array(dOut), x = array(in), mu = array(mean), rs = array(rstd);
        int dyOff = offset(dOut), xOff = offset(in), muOff = offset(mean), rsOff = offset(rstd);
        Parallel.forEach(c, (long) n * c * hw * Parallel.SERIAL_SUM_WORK, ch -> {
            double sumG = 0, sumB = 0;
            for (int ni = 0; ni < n; ni++) {
                int seg = ni * groups + ch / cg;
                double m = mu[muOff + seg], r = rs[rsOff + seg];
                int base = (ni * c + ch) * hw;
                for (int p = 0; p < hw; p++) {
                    double g = dy[dyOff + base + p];
                    sumG += g * (x[xOff + base + p] - m) * r;
                    sumB += g;
                }
            }
            if (dGamma != null) array(dGamma)[offset(dGamma) + ch] += (float) sumG;
            if (dBeta != null) array(dBeta)[offset(dBeta) + ch] += (float) sumB;
        });
    }

    static void layerNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int rows, int cols) {
        if (dIn != null) backwardInput(dIn, dOut, in, mean, rstd, gamma, rows, cols, 1, seg -> 0);
        if (dGamma == null && dBeta == null) return;
        // per column: Σ over rows in order; columns in blocks so rows are read contiguously
        float[] dy = array(dOut), x = array(in), mu = array(mean), rs = array(rstd);
        int dyOff = offset(dOut), xOff = offset(in), muOff = offset(mean), rsOff = offset(rstd);
        Parallel.forRanges(cols, 64, (long) rows * cols, (c0, c1) -> {
            int from = c0, width = c1 - c0;
            double[] sumG = new double[width], sumB = new double[width];
            for (int row = 0; row < rows; row++) {
                double m = mu[muOff + row], r = rs[rsOff + row];
                int base = row * cols + from;
                for (int j = 0; j < width; j++) {
                    double g = dy[dyOff + base + j];
                    sumG[j] += g * (x[xOff + base + j] - m) * r;
                    sumB[j] += g;
                }
            }
            for (int j = 0; j < width; j++) {
                if (dGamma != null) array(dGamma)[offset(dGamma) + from + j] += (float) sumG[j];
                if (dBeta != null) array(dBeta)[offset(dBeta) + from + j] += (float) sumB[j];
            }
        });
    }

    /** first affine parameter index of a segment (its first channel for GroupNorm, 0 for LayerNorm) */
    private interface FirstParam {
        int of(int segment);
    }

    /*
     * The elementwise passes run in DoubleChunks (vectorised); sums in four interleaved double chains (a fixed order:
     * deterministic), four times the throughput of one.
     */

    /**
     * Normalises {@code segments} contiguous segments of {@code len} elements; within a segment the affine
     * parameter index advances every {@code perParam} elements (hw for GroupNorm, 1 for LayerNorm, where it
     * then runs over the columns).
     */
    private static void forwardSegments(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                                        int segments, int len, int perParam, FirstParam firstParam, float eps) {
        float[] y = array(out), x = array(in), gm = array(gamma), bt = array(beta);
        float[] mu = mean == null ? null : array(mean), rs = rstd == null ? null : array(rstd);
        int yOff = offset(out), xOff = offset(in), gOff = offset(gamma), bOff = offset(beta);
        Parallel.forEach(segments, (long) segments * len * NORMALISE_WORK, seg -> {
            int base = seg * len;
            double m = Sums.interleaved(x, xOff + base, len) / len;
            double r = 1.0 / Math.sqrt(sumSquaredDeviations(x, xOff + base, len, m) / len + eps);
            int p0 = firstParam.of(seg);
            double[][] s = scratch();
            if (perParam == 1) {
                // LayerNorm: gamma and beta per element
                for (int c = 0; c < len; c += CHUNK) {
                    int n = Math.min(CHUNK, len - c);
                    double[] v = s[0];
                    widen(x, xOff + base + c, v, n);
                    for (int i = 0; i < n; i++) v[i] = (v[i] - m) * r * gm[gOff + p0 + c + i] + bt[bOff + p0 + c + i];
                    narrow(v, y, yOff + base + c, n);
                }
            } else {
                // GroupNorm: one channel's gamma and beta over each run of perParam pixels
                for (int ch = 0; ch < len / perParam; ch++) {
                    double scale = r * gm[gOff + p0 + ch], shift = bt[bOff + p0 + ch];
                    for (int c = 0; c < perParam; c += CHUNK) {
                        int n = Math.min(CHUNK, perParam - c), at = base + ch * perParam + c;
                        double[] v = s[0];
                        widen(x, xOff + at, v, n);
                        for (int i = 0; i < n; i++) v[i] = (v[i] - m) * scale + shift;
                        narrow(v, y, yOff + at, n);
                    }
                }
            }
            if (mu != null) mu[offset(mean) + seg] = (float) m;
            if (rs != null) rs[offset(rstd) + seg] = (float) r;
        });
    }

    /**
     * dx += rstd · (dy·γ - mean(dy·γ) - x̂ · mean(dy·γ·x̂)) over each segment, x̂ = (x - mean) · rstd.
     */
    private static void backwardInput(Tensor dIn, Tensor dOut, Tensor in, Tensor mean, Tensor rstd, Tensor gamma,
                                      int segments, int len, int perParam, FirstParam firstParam) {
        float[] dx = array(dIn), dy = array(dOut), x = array(in), mu = array(mean), rs = array(rstd), gm = array(gamma);
        int dxOff = offset(dIn), dyOff = offset(dOut), xOff = offset(in), gOff = offset(gamma);
        int muOff = offset(mean), rsOff = offset(rstd);
        Parallel.forEach(segments, (long) segments * len * NORMALISE_WORK, seg -> {
            int base = seg * len;
            double m = mu[muOff + seg], r = rs[rsOff + seg];
            int p0 = firstParam.of(seg);
            double[][] s = scratch();
            double[] dxhat = s[0], xhat = s[1], sums = s[2];
            // a run shares one pattern of gamma: a GroupNorm channel (one value), or a LayerNorm row (one per element)
            int run = perParam == 1 ? len : perParam;
            // pass 1: the two segment means, in four interleaved chains
            Arrays.fill(sums, 0, 8, 0);
            for (int at = 0; at < len; at += run) {
                for (int c = 0; c < run; c += CHUNK) {
                    int n = Math.min(CHUNK, run - c), g = gOff + p0 + (perParam == 1 ? c : at / run);
                    gradientChunk(dy, dyOff + base + at + c, x, xOff + base + at + c, gm, g, perParam, m, r, dxhat, xhat, n);
                    accumulate(sums, dxhat, xhat, n);
                }
            }
            double meanDxhat = ((sums[0] + sums[1]) + (sums[2] + sums[3])) / len;
            double meanDxhatXhat = ((sums[4] + sums[5]) + (sums[6] + sums[7])) / len;
            // pass 2: the gradient
            for (int at = 0; at < len; at += run) {
                for (int c = 0; c < run; c += CHUNK) {
                    int n = Math.min(CHUNK, run - c), g = gOff + p0 + (perParam == 1 ? c : at / run);
                    gradientChunk(dy, dyOff + base + at + c, x, xOff + base + at + c, gm, g, perParam, m, r, dxhat, xhat, n);
                    int to = dxOff + base + at + c;
                    for (int i = 0; i < n; i++) dx[to + i] += (float) (r * (dxhat[i] - meanDxhat - xhat[i] * meanDxhatXhat));
                }
            }
        });
    }

    /**
     * dxhat[i] = dy · γ and xhat[i] = (x − m) · r for a chunk of n elements; γ is gm[g] for every element of a
     * GroupNorm channel, gm[g + i] per element of a LayerNorm row (perParam 1).
     */
    private static void gradientChunk(float[] dy, int dyAt, float[] x, int xAt, float[] gm, int g, int perParam,
                                      double m, double r, double[] dxhat, double[] xhat, int n) {
        widen(dy, dyAt, dxhat, n);
        widen(x, xAt, xhat, n);
        if (perParam == 1) {
            for (int i = 0; i < n; i++) dxhat[i] *= gm[g + i];
        } else {
            double gamma = gm[g];
            for (int i = 0; i < n; i++) dxhat[i] *= gamma;
        }
        for (int i = 0; i < n; i++) xhat[i] = (xhat[i] - m) * r;
    }

    /** sums[0..3] += the four interleaved chains of Σ a; sums[4..7] of Σ a·b (i ≡ lane mod 4). */
    private static void accumulate(double[] sums, double[] a, double[] b, int n) {
        double s0 = sums[0], s1 = sums[1], s2 = sums[2], s3 = sums[3];
        double t0 = sums[4], t1 = sums[5], t2 = sums[6], t3 = sums[7];
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
            t0 += a[i] * b[i];
            t1 += a[i + 1] * b[i + 1];
            t2 += a[i + 2] * b[i + 2];
            t3 += a[i + 3] * b[i + 3];
        }
        for (; i < n; i++) {
            s0 += a[i];
            t0 += a[i] * b[i];
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
        sums[4] = t0;
        sums[5] = t1;
        sums[6] = t2;
        sums[7] = t3;
    }

    /** Σ (x[from + i] − m)² for i < n, in four interleaved double chains. */
    private static double sumSquaredDeviations(float[] x, int from, int n, double m) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            double d0 = x[from + i] - m, d1 = x[from + i + 1] - m, d2 = x[from + i + 2] - m, d3 = x[from + i + 3] - m;
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
        }
        for (; i < n; i++) {
            double d = x[from + i] - m;
            s0 += d * d;
        }
        return (s0 + s1) + (s2 + s3);
    }


    private static void checkGroups(int c, int groups) {
        if (groups <= 0 || c % groups != 0) {
            throw new IllegalArgumentException("group norm: " + c + " channels do not split into " + groups + " groups");
        }
    }
}
