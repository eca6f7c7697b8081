package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import static esdnative.backend.cpu.CpuStorage.array;
import static esdnative.backend.cpu.CpuStorage.offset;

/**
 * GroupNorm and LayerNorm as torch computes them: biased variance, y = (x - mean) · rstd · gamma + beta,
 * rstd = 1/sqrt(var + eps) (https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html).
 * Statistics are accumulated in double (two passes: mean, then squared deviations).
 * Both are one "normalise a contiguous segment" kernel: GroupNorm's segment is a group's cg·hw elements with
 * gamma indexed by channel, LayerNorm's is a row with gamma indexed by column.
 */
final class NormOps {
    /**
     * work (Parallel.MIN_PARALLEL_WORK's units) of a normalised element: double arithmetic, a parameter index
     * division and two or three passes
     */
    private static final int NORMALISE_WORK = 12;
    /** work of an element added to an ordered double sum (one add's latency) */
    private static final int SERIAL_SUM_WORK = 4;

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
        Parallel.forEach(c, (long) n * c * hw * SERIAL_SUM_WORK, ch -> {
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
            double sum = 0;
            for (int i = 0; i < len; i++) sum += x[xOff + base + i];
            double m = sum / len;
            double sq = 0;
            for (int i = 0; i < len; i++) {
                double d = x[xOff + base + i] - m;
                sq += d * d;
            }
            double r = 1.0 / Math.sqrt(sq / len + eps);
            int p0 = firstParam.of(seg);
            for (int i = 0; i < len; i++) {
                int p = paramIndex(p0, i, perParam);
                y[yOff + base + i] = (float) ((x[xOff + base + i] - m) * r * gm[gOff + p] + bt[bOff + p]);
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
            double sumDxhat = 0, sumDxhatXhat = 0;
            for (int i = 0; i < len; i++) {
                double dxhat = (double) dy[dyOff + base + i] * gm[gOff + paramIndex(p0, i, perParam)];
                sumDxhat += dxhat;
                sumDxhatXhat += dxhat * (x[xOff + base + i] - m) * r;
            }
            double meanDxhat = sumDxhat / len, meanDxhatXhat = sumDxhatXhat / len;
            for (int i = 0; i < len; i++) {
                double dxhat = (double) dy[dyOff + base + i] * gm[gOff + paramIndex(p0, i, perParam)];
                double xhat = (x[xOff + base + i] - m) * r;
                dx[dxOff + base + i] += (float) (r * (dxhat - meanDxhat - xhat * meanDxhatXhat));
            }
        });
    }

    private static int paramIndex(int firstParam, int i, int perParam) {
        return firstParam + (perParam == 1 ? i : i / perParam);
    }

    private static void checkGroups(int c, int groups) {
        if (groups <= 0 || c % groups != 0) {
            throw new IllegalArgumentException("group norm: " + c + " channels do not split into " + groups + " groups");
        }
    }
}
