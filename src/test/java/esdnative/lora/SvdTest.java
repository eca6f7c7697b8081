package esdnative.lora;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The SVD against matrices built from known factors: A = Q₁·diag(s)·Q₂ᵀ with orthonormal Q₁, Q₂ made here by
 * Gram–Schmidt of seeded Gaussian columns, so the singular values are known exactly (up to the float64 rounding of
 * building A, ~1e-16·s₁). Tolerances are a few hundred float64 ulps of the largest singular value.
 */
class SvdTest {
    private static final double TOL = 1e-13;

    @Test
    void fullRecoversKnownSingularValuesTallAndWide() {
        double[] s = {9, 5, 3, 1, 0.5, 0.1, 1e-3, 1e-6};
        for (int[] mn : new int[][] {{40, 8}, {8, 40}, {30, 12}, {12, 30}}) {
            int m = mn[0], n = mn[1], k = Math.min(m, n);
            double[] sk = java.util.Arrays.copyOf(s, k);
            for (int i = s.length; i < k; i++) sk[i] = 1e-7 / (i + 1);
            double[] a = known(m, n, sk, 17 + m);
            Svd.Result r = Svd.full(a, m, n);
            assertEquals(k, r.k());
            for (int i = 0; i < k; i++) assertEquals(sk[i], r.s()[i], TOL * sk[0], "s[" + i + "] of " + m + "×" + n);
            assertOrthonormalColumns(r.u(), m, k);
            assertOrthonormalColumns(Svd.transpose(r.vt(), k, n), n, k);
            assertTrue(relativeError(a, reconstruct(r)) < TOL, "reconstruction " + m + "×" + n);
        }
    }

    @Test
    void aRankDeficientMatrixHasZerosAndStillOrthonormalFactors() {
        int m = 30, n = 20;
        double[] a = known(m, n, new double[] {4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 3);
        Svd.Result r = Svd.full(a, m, n);
        for (int i = 3; i < n; i++) assertTrue(r.s()[i] < TOL * 4, "s[" + i + "] = " + r.s()[i]);
        assertOrthonormalColumns(r.u(), m, n);
        assertTrue(relativeError(a, reconstruct(r)) < TOL);
    }

    @Test
    void truncatedFindsAKnownRankMatrixExactly() {
        int m = 320, n = 200;   // large enough for subspace iteration (not the full-Jacobi shortcut)
        double[] a = known(m, n, new double[] {3, 2, 1.5, 0.7, 0.01}, 5);
        Svd.Result r = Svd.truncated(a, m, n, 8);
        assertEquals(8, r.k());
        assertTrue(relativeError(a, reconstruct(r)) < 1e-12, "rank-5 matrix at rank 8");
        assertEquals(3, r.s()[0], TOL * 3);
        assertEquals(0.01, r.s()[4], TOL * 3);
        assertOrthonormalColumns(r.u(), m, 8);
    }

    @Test
    void truncatedMatchesTheFullDecompositionsLeadingTriplets() {
        int m = 256, n = 160, k = 8;
        Random rnd = new Random(7);
        // slowly decaying spectrum plus noise: a realistic ΔW
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = Math.pow(0.93, i);
        double[] a = known(m, n, s, 11);
        for (int i = 0; i < a.length; i++) a[i] += 1e-4 * rnd.nextGaussian();
        Svd.Result full = Svd.full(a, m, n);
        Svd.Result top = Svd.truncated(a, m, n, k);
        for (int i = 0; i < k; i++) assertEquals(full.s()[i], top.s()[i], 1e-10 * full.s()[0], "s[" + i + "]");
        // Eckart–Young: the best rank-k error is the energy of the dropped singular values
        double dropped = 0, all = 0;
        for (int i = 0; i < full.k(); i++) {
            all += full.s()[i] * full.s()[i];
            if (i >= k) dropped += full.s()[i] * full.s()[i];
        }
        assertEquals(Math.sqrt(dropped / all), relativeError(a, reconstruct(top)), 1e-10);
    }

    @Test
    void aFlatSpectrumStillGivesANearOptimalTruncation() {
        // Gaussian noise: no gap after the 8th value, the hardest case for subspace iteration
        int m = 300, n = 240, k = 8;
        Random rnd = new Random(3);
        double[] a = new double[m * n];
        for (int i = 0; i < a.length; i++) a[i] = rnd.nextGaussian();
        Svd.Result full = Svd.full(a, m, n);
        double dropped = 0, all = 0;
        for (int i = 0; i < full.k(); i++) {
            all += full.s()[i] * full.s()[i];
            if (i >= k) dropped += full.s()[i] * full.s()[i];
        }
        double optimal = Math.sqrt(dropped / all);
        double got = relativeError(a, reconstruct(Svd.truncated(a, m, n, k)));
        assertTrue(got >= optimal - 1e-12 && got <= optimal * (1 + 1e-4), got + " vs optimal " + optimal);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    /** Q₁ (m×k) · diag(s) · Q₂ᵀ (k×n), k = s.length, from seeded Gaussians orthonormalised by Gram–Schmidt. */
    static double[] known(int m, int n, double[] s, long seed) {
        int k = s.length;
        double[] q1 = orthonormal(m, k, new Random(seed)), q2 = orthonormal(n, k, new Random(seed + 1000));
        double[] a = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int r = 0; r < k; r++) sum += q1[i * k + r] * s[r] * q2[j * k + r];
                a[i * n + j] = sum;
            }
        return a;
    }

    private static double[] orthonormal(int rows, int cols, Random rnd) {
        double[] q = new double[rows * cols];
        for (int j = 0; j < cols; j++) {
            for (int i = 0; i < rows; i++) q[i * cols + j] = rnd.nextGaussian();
            for (int pass = 0; pass < 2; pass++) {
                for (int o = 0; o < j; o++) {
                    double d = 0;
                    for (int i = 0; i < rows; i++) d += q[i * cols + o] * q[i * cols + j];
                    for (int i = 0; i < rows; i++) q[i * cols + j] -= d * q[i * cols + o];
                }
            }
            double norm = 0;
            for (int i = 0; i < rows; i++) norm += q[i * cols + j] * q[i * cols + j];
            for (int i = 0; i < rows; i++) q[i * cols + j] /= Math.sqrt(norm);
        }
        return q;
    }

    static double[] reconstruct(Svd.Result r) {
        double[] out = new double[r.m() * r.n()];
        for (int i = 0; i < r.m(); i++)
            for (int j = 0; j < r.n(); j++) {
                double sum = 0;
                for (int c = 0; c < r.k(); c++) sum += r.u()[i * r.k() + c] * r.s()[c] * r.vt()[c * r.n() + j];
                out[i * r.n() + j] = sum;
            }
        return out;
    }

    static double relativeError(double[] a, double[] b) {
        double d = 0, norm = 0;
        for (int i = 0; i < a.length; i++) {
            d += (a[i] - b[i]) * (a[i] - b[i]);
            norm += a[i] * a[i];
        }
        return Math.sqrt(d / norm);
    }

    private static void assertOrthonormalColumns(double[] q, int rows, int cols) {
        for (int x = 0; x < cols; x++)
            for (int y = 0; y <= x; y++) {
                double d = 0;
                for (int i = 0; i < rows; i++) d += q[i * cols + x] * q[i * cols + y];
                assertEquals(x == y ? 1 : 0, d, TOL, "column " + x + "·" + y);
            }
    }
}
