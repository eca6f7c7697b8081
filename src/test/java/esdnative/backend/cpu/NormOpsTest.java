package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;

/**
 * GroupNorm and LayerNorm against float64 loops of torch's definition (biased variance), backwards against
 * float64 finite differences; the saved mean/rstd against the float64 statistics.
 */
class NormOpsTest {
    private static final float EPS = 1e-5f;

    /** torch.nn.GroupNorm on x[n, c, hw]; also returns mean and rstd per (n, group) in stats when given */
    static double[] naiveGroupNorm(double[] x, double[] gamma, double[] beta, int n, int c, int hw, int groups,
                                   double[] stats) {
        int cg = c / groups, len = cg * hw;
        double[] y = new double[x.length];
        for (int ni = 0; ni < n; ni++)
            for (int g = 0; g < groups; g++) {
                int base = (ni * c + g * cg) * hw;
                double mean = 0, var = 0;
                for (int i = 0; i < len; i++) mean += x[base + i];
                mean /= len;
                for (int i = 0; i < len; i++) var += (x[base + i] - mean) * (x[base + i] - mean);
                var /= len;
                double rstd = 1 / Math.sqrt(var + EPS);
                if (stats != null) {
                    stats[2 * (ni * groups + g)] = mean;
                    stats[2 * (ni * groups + g) + 1] = rstd;
                }
                for (int i = 0; i < len; i++) {
                    int ch = g * cg + i / hw;
                    y[base + i] = (x[base + i] - mean) * rstd * gamma[ch] + beta[ch];
                }
            }
        return y;
    }

    @Test
    void groupNormWithSeveralGroups() {
        OpCheck t = new OpCheck(5);
        int n = 2, c = 6, hw = 7 * 3, groups = 3;
        checkGroupNorm(t, n, c, hw, groups);
        checkGroupNorm(t, 1, 4, 5, 1);
        checkGroupNorm(t, 3, 4, 9, 4);
        checkGroupNorm(t, 1, 2, 530, 1); // channels longer than NormOps' 512-element chunks
    }

    private void checkGroupNorm(OpCheck t, int n, int c, int hw, int groups) {
        String name = "groupNorm(groups=" + groups + ")";
        // an offset mean checks that the variance is computed around it (no cancellation)
        float[] x = t.randn(n * c * hw, 2.0);
        for (int i = 0; i < x.length; i++) x[i] += 3f;
        float[] gamma = t.randn(c), beta = t.randn(c);
        Tensor out = t.tensor(new float[x.length]), mean = t.tensor(new float[n * groups]), rstd = t.tensor(new float[n * groups]);
        Tensor xt = t.tensor(x), gt = t.tensor(gamma);
        t.cpu.groupNorm(out, mean, rstd, xt, gt, t.tensor(beta), n, c, hw, groups, EPS);

        double[][] in = {toDouble(x), toDouble(gamma), toDouble(beta)};
        double[] stats = new double[2 * n * groups];
        Function<double[][], double[]> f = a -> naiveGroupNorm(a[0], a[1], a[2], n, c, hw, groups, null);
        Goldens.assertRelClose(name, naiveGroupNorm(in[0], in[1], in[2], n, c, hw, groups, stats), t.host(out), FORWARD_TOL);
        Goldens.assertRelClose(name + " mean", every(stats, 0), t.host(mean), FORWARD_TOL);
        Goldens.assertRelClose(name + " rstd", every(stats, 1), t.host(rstd), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(x.length));
        float[] dxBefore = t.randn(x.length), dgBefore = t.randn(c), dbBefore = t.randn(c);
        Tensor dx = t.tensor(dxBefore.clone()), dg = t.tensor(dgBefore.clone()), db = t.tensor(dbBefore.clone());
        t.cpu.groupNormBackward(dx, dg, db, t.tensor(toFloat(dOut)), xt, mean, rstd, gt, n, c, hw, groups);
        assertAccumulated(name + " dIn", t.host(dx), dxBefore, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dGamma", t.host(dg), dgBefore, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dBeta", t.host(db), dbBefore, finiteDiff(f, in, 2, dOut), BACKWARD_TOL);
    }

    /** torch.nn.LayerNorm over the last dimension of x[rows, cols] */
    static double[] naiveLayerNorm(double[] x, double[] gamma, double[] beta, int rows, int cols) {
        // a layer norm is a group norm with one group per row, gamma per column: same definition
        double[] y = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int j = 0; j < cols; j++) mean += x[r * cols + j];
            mean /= cols;
            for (int j = 0; j < cols; j++) var += (x[r * cols + j] - mean) * (x[r * cols + j] - mean);
            var /= cols;
            double rstd = 1 / Math.sqrt(var + EPS);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (x[r * cols + j] - mean) * rstd * gamma[j] + beta[j];
        }
        return y;
    }

    @Test
    void layerNorm() {
        checkLayerNorm(5, 70);  // cols > 64: two column blocks in the gamma/beta reduction
        checkLayerNorm(2, 1100); // rows longer than NormOps' 512-element chunks
    }

    private void checkLayerNorm(int rows, int cols) {
        OpCheck t = new OpCheck(6 + cols);
        float[] x = t.randn(rows * cols, 1.5), gamma = t.randn(cols), beta = t.randn(cols);
        for (int i = 0; i < x.length; i++) x[i] -= 2f;
        Tensor out = t.tensor(new float[x.length]), mean = t.tensor(new float[rows]), rstd = t.tensor(new float[rows]);
        Tensor xt = t.tensor(x), gt = t.tensor(gamma);
        t.cpu.layerNorm(out, mean, rstd, xt, gt, t.tensor(beta), rows, cols, EPS);
        double[][] in = {toDouble(x), toDouble(gamma), toDouble(beta)};
        Function<double[][], double[]> f = a -> naiveLayerNorm(a[0], a[1], a[2], rows, cols);
        Goldens.assertRelClose("layerNorm", f.apply(in), t.host(out), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(x.length));
        float[] dxBefore = t.randn(x.length), dgBefore = t.randn(cols), dbBefore = t.randn(cols);
        Tensor dx = t.tensor(dxBefore.clone()), dg = t.tensor(dgBefore.clone()), db = t.tensor(dbBefore.clone());
        t.cpu.layerNormBackward(dx, dg, db, t.tensor(toFloat(dOut)), xt, mean, rstd, gt, rows, cols);
        assertAccumulated("layerNorm dIn", t.host(dx), dxBefore, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
        assertAccumulated("layerNorm dGamma", t.host(dg), dgBefore, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
        assertAccumulated("layerNorm dBeta", t.host(db), dbBefore, finiteDiff(f, in, 2, dOut), BACKWARD_TOL);
    }

    private static double[] every(double[] pairs, int which) {
        double[] out = new double[pairs.length / 2];
        for (int i = 0; i < out.length; i++) out[i] = pairs[2 * i + which];
        return out;
    }
}
