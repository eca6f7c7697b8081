package esdnative.backend.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** FastExp against float64 Math.exp: float rows over softmax's whole input range, double chunks over ±700. */
class FastExpTest {

    @Test
    void withinTwoTenthsOfAMillionthOfExpOverTheSoftmaxRange() {
        // 2e-7 relative ≈ 3.4 float32 half-ulps (6e-8): the polynomial truncates below 5e-9, the rest is rounding
        int n = 1_000_001;
        float[] row = new float[n + 3];
        float shift = 0.75f;
        for (int j = 0; j < n; j++) row[3 + j] = shift + FastExp.MIN_INPUT * j / (n - 1);
        float[] in = row.clone();
        FastExp.expShifted(row, 3, n, shift);
        double worst = 0;
        for (int j = 0; j < n; j++) {
            double exact = Math.exp((double) in[3 + j] - shift);
            worst = Math.max(worst, Math.abs(row[3 + j] - exact) / exact);
        }
        assertTrue(worst < 2e-7, "worst relative error " + worst);
        assertEquals(0f, row[0] + row[1] + row[2], "elements before the offset untouched");
    }

    @Test
    void perElementShiftsOverARange() {
        // column softmax: a[i] = exp(a[i] − shift[i]) for from ≤ i < to, elements outside the range untouched
        int from = 5, to = 1_000_005;
        float[] a = new float[to + 4], shift = new float[to + 4];
        java.util.Random random = new java.util.Random(3);
        for (int i = 0; i < a.length; i++) {
            shift[i] = (float) (random.nextGaussian() * 10);
            a[i] = shift[i] + FastExp.MIN_INPUT * (i - from) / (to - from - 1);
        }
        float[] in = a.clone();
        FastExp.expShifted(a, shift, from, to);
        double worst = 0;
        for (int i = from; i < to; i++) {
            double exact = Math.exp(in[i] - shift[i]);   // of the float difference, the argument FastExp sees
            worst = Math.max(worst, Math.abs(a[i] - exact) / exact);
        }
        assertTrue(worst < 2e-7, "worst relative error " + worst);
        for (int i = 0; i < from; i++) assertEquals(in[i], a[i], "before the range untouched");
        for (int i = to; i < a.length; i++) assertEquals(in[i], a[i], "after the range untouched");
    }

    @Test
    void edgesAreExactOrFinite() {
        float[] row = {0f, -1000f, Float.NEGATIVE_INFINITY, Float.NaN};
        FastExp.expShifted(row, 0, row.length, 0f);
        assertEquals(1f, row[0]);
        assertEquals((float) Math.exp(FastExp.MIN_INPUT), row[1], 1e-44f);   // clamped: no denormal, no 0
        assertEquals(row[1], row[2]);
        assertTrue(Float.isNaN(row[3]));
    }

    @Test
    void doubleExpWithinThreeTenthsOfABillionth() {
        // the degree-8 polynomial truncates below 2e-10; the rest is double rounding
        int n = 1_400_001;
        double[] a = new double[n];
        for (int j = 0; j < n; j++) a[j] = -FastExp.DOUBLE_LIMIT + 2 * FastExp.DOUBLE_LIMIT * j / (n - 1);
        double[] in = a.clone();
        FastExp.exp(a, n);
        double worst = 0;
        for (int j = 0; j < n; j++) worst = Math.max(worst, Math.abs(a[j] / Math.exp(in[j]) - 1));
        System.out.printf("FastExp.exp(double[]): worst relative error on [-700, 700] %.2e%n", worst);
        assertTrue(worst < 3e-10, "worst relative error " + worst);
        double[] edges = {0, -0.0, Double.NaN};
        FastExp.exp(edges, edges.length);
        assertEquals(1.0, edges[0]);
        assertEquals(1.0, edges[1]);
        assertTrue(Double.isNaN(edges[2]));
    }
}
