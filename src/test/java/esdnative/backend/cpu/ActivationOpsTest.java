package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SiLU, exact GELU, quick GELU and GEGLU against their float64 definitions, with a float64 erf written here
 * independently of {@link ActivationOps}'s rational tail (power series below 2.5, continued fraction above);
 * backwards against finite differences and against their float64 derivatives over −100..100.
 */
class ActivationOpsTest {

    /** erfc in float64: Taylor series of erf for |x| < 2.5, Laplace's continued fraction for erfc beyond. */
    static double referenceErfc(double x) {
        if (Math.abs(x) < 2.5) return 1 - seriesErf(x);
        double z = Math.abs(x);
        double tail = continuedFractionErfc(z);
        return x > 0 ? tail : 2 - tail;
    }

    /** erf(x) = 2/√π Σ_n (-1)^n x^(2n+1) / (n! (2n+1)) */
    private static double seriesErf(double x) {
        double term = x, sum = x;  // term = (-1)^n x^(2n+1) / n!
        for (int n = 1; n < 200; n++) {
            term *= -x * x / n;
            sum += term / (2 * n + 1);
            if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
        }
        return 2 / Math.sqrt(Math.PI) * sum;
    }

    /** erfc(z) = exp(-z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + …))))), z > 0, evaluated from the tail */
    private static double continuedFractionErfc(double z) {
        double k = z;
        for (int n = 400; n >= 1; n--) k = z + (n / 2.0) / k;
        return Math.exp(-z * z) / (Math.sqrt(Math.PI) * k);
    }

    static double referenceGelu(double x) {
        return 0.5 * x * referenceErfc(-x / Math.sqrt(2));
    }

    @Test
    void referenceErfAgreesAcrossItsTwoMethods() {
        // the two methods meet at 2.5: they agree there to ~1e-14 absolute (1 - erf loses the rest to
        // cancellation), i.e. erfc to ~1e-11 relative, far below the float32 errors under test
        assertEquals(1 - seriesErf(2.5), continuedFractionErfc(2.5), 1e-14);
        assertEquals(0.8427007929497149, 1 - referenceErfc(1.0), 1e-15);  // erf(1), tabulated (A&S table 7.1)
    }

    @Test
    void silu() {
        checkElementwise("silu", x -> x / (1 + Math.exp(-x)), (t, out, in, n) -> t.cpu.silu(out, in, n),
                (t, dx, dy, in, n) -> t.cpu.siluBackward(dx, dy, in, n));
    }

    @Test
    void gelu() {
        checkElementwise("gelu", ActivationOpsTest::referenceGelu, (t, out, in, n) -> t.cpu.gelu(out, in, n),
                (t, dx, dy, in, n) -> t.cpu.geluBackward(dx, dy, in, n));
    }

    @Test
    void quickGelu() {
        checkElementwise("quickGelu", x -> x / (1 + Math.exp(-1.702 * x)), (t, out, in, n) -> t.cpu.quickGelu(out, in, n),
                (t, dx, dy, in, n) -> t.cpu.quickGeluBackward(dx, dy, in, n));
    }

    interface Forward {
        void run(OpCheck t, Tensor out, Tensor in, long n);
    }

    interface Backward {
        void run(OpCheck t, Tensor dIn, Tensor dOut, Tensor in, long n);
    }

    private static void checkElementwise(String name, DoubleUnaryOperator f, Forward forward, Backward backward) {
        OpCheck t = new OpCheck(name.hashCode());
        float[] x = t.uniform(301, -8, 8);
        x[0] = 0f;
        x[1] = -30f;  // far tails
        x[2] = 30f;
        Tensor in = t.tensor(x), out = t.tensor(new float[x.length]);
        forward.run(t, out, in, x.length);
        double[][] inputs = {toDouble(x)};
        Function<double[][], double[]> naive = a -> {
            double[] y = new double[a[0].length];
            for (int i = 0; i < y.length; i++) y[i] = f.applyAsDouble(a[0][i]);
            return y;
        };
        double[] expected = naive.apply(inputs);
        Goldens.assertRelClose(name, expected, t.host(out), FORWARD_TOL);
        assertElementwiseRelative(name, t.host(out), expected);

        double[] dOut = toDouble(t.randn(x.length));
        float[] before = t.randn(x.length);
        Tensor dx = t.tensor(before.clone());
        backward.run(t, dx, t.tensor(toFloat(dOut)), in, x.length);
        assertAccumulated(name + " backward", t.host(dx), before, finiteDiff(naive, inputs, 0, dOut), BACKWARD_TOL);
    }

    /** elementwise ops round once: each value within a few float32 ulps of the exact one, tails included */
    private static void assertElementwiseRelative(String name, float[] actual, double[] expected) {
        for (int i = 0; i < actual.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            assertTrue(err <= 3e-7 * Math.abs(expected[i]) + 1e-30,
                    name + "(" + i + "): " + actual[i] + " vs " + expected[i]);
        }
    }

    @Test
    void geglu() {
        OpCheck t = new OpCheck(77);
        int rows = 3, cols = 11;
        float[] x = t.uniform(rows * 2 * cols, -4, 4);
        Tensor in = t.tensor(x), out = t.tensor(new float[rows * cols]);
        t.cpu.geglu(out, in, rows, cols);
        double[][] inputs = {toDouble(x)};
        Function<double[][], double[]> naive = a -> {
            double[] y = new double[rows * cols];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) {
                    y[r * cols + j] = a[0][r * 2 * cols + j] * referenceGelu(a[0][r * 2 * cols + cols + j]);
                }
            return y;
        };
        Goldens.assertRelClose("geglu", naive.apply(inputs), t.host(out), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(rows * cols));
        float[] before = t.randn(x.length);
        Tensor dx = t.tensor(before.clone());
        t.cpu.gegluBackward(dx, t.tensor(toFloat(dOut)), in, rows, cols);
        assertAccumulated("geglu backward", t.host(dx), before, finiteDiff(naive, inputs, 0, dOut), BACKWARD_TOL);
    }

    // ---- wide ranges: the float results against float64 references, element by element ----------------------

    /**
     * Each float result is its float64 value rounded once (≤ 2^-24 ≈ 5.96e-8 relative) plus the double
     * pipeline's own error (the normal tail's fit 2.3e-10, exp 3e-10): 6.2e-8 bounds the sum. Results below
     * float's normal range are checked to within one subnormal step.
     */
    private static final double ROUNDED_ONCE = 6.2e-8;

    /** −100..100 in steps of 1e-3 (200001 values: several GRAIN ranges, a partial last chunk) */
    private static float[] wideRange() {
        float[] x = new float[200_001];
        for (int i = 0; i < x.length; i++) x[i] = (float) (-100 + i * 1e-3);
        return x;
    }

    private static final float[] SPECIAL = {0f, -0f, 1e-30f, -1e-30f, 1e-40f, -1e-40f, Float.MIN_VALUE,
            -Float.MIN_VALUE, Float.MIN_NORMAL, -Float.MIN_NORMAL, 1e30f, -1e30f, Float.MAX_VALUE, -Float.MAX_VALUE};

    /** the worst relative error over results in float's normal range; fails beyond the bounds above */
    private static double worstRelative(String name, float[] x, float[] actual, DoubleUnaryOperator reference,
                                        double absoluteFloor) {
        double worst = 0;
        for (int i = 0; i < x.length; i++) {
            double expected = reference.applyAsDouble(x[i]);
            double err = Math.abs(actual[i] - expected);
            if (Math.abs(expected) >= Float.MIN_NORMAL) {
                worst = Math.max(worst, err / Math.abs(expected));
                assertTrue(err <= ROUNDED_ONCE * Math.abs(expected) + absoluteFloor,
                        name + "(" + x[i] + ") = " + actual[i] + ", expected " + expected);
            } else {
                assertTrue(err <= Float.MIN_VALUE, name + "(" + x[i] + ") = " + actual[i] + ", expected " + expected);
            }
        }
        return worst;
    }

    private static double sigmoid(double a) {
        return 1 / (1 + Math.exp(-a));
    }

    private static double referenceXSigmoidGrad(double x, double alpha) {
        double s = sigmoid(alpha * x);
        return s * (1 + alpha * x * (1 - s));
    }

    private static double referenceGeluGrad(double x) {
        return 0.5 * referenceErfc(-x / Math.sqrt(2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    }

    private static void checkWide(String name, DoubleUnaryOperator f, DoubleUnaryOperator derivative,
                                  double gradFloor, Forward forward, Backward backward) {
        OpCheck t = new OpCheck(name.hashCode());
        for (float[] x : new float[][] {wideRange(), SPECIAL}) {
            Tensor in = t.tensor(x), out = t.tensor(new float[x.length]);
            forward.run(t, out, in, x.length);
            double forwardWorst = worstRelative(name, x, t.host(out), f, 0);

            // dIn starts at zero and dOut is one: dIn holds the derivative rounded to float
            float[] ones = new float[x.length];
            java.util.Arrays.fill(ones, 1f);
            Tensor dx = t.tensor(new float[x.length]);
            backward.run(t, dx, t.tensor(ones), in, x.length);
            double backwardWorst = worstRelative(name + "'", x, t.host(dx), derivative, gradFloor);
            System.out.printf("%s on %d values: worst relative error %.2e forward, %.2e backward%n",
                    name, x.length, forwardWorst, backwardWorst);
        }
    }

    @Test
    void siluOverAWideRange() {
        checkWide("silu", x -> x * sigmoid(x), x -> referenceXSigmoidGrad(x, 1), 1e-15,
                (t, out, in, n) -> t.cpu.silu(out, in, n), (t, dx, dy, in, n) -> t.cpu.siluBackward(dx, dy, in, n));
    }

    @Test
    void quickGeluOverAWideRange() {
        checkWide("quickGelu", x -> x * sigmoid(1.702 * x), x -> referenceXSigmoidGrad(x, 1.702), 1e-15,
                (t, out, in, n) -> t.cpu.quickGelu(out, in, n),
                (t, dx, dy, in, n) -> t.cpu.quickGeluBackward(dx, dy, in, n));
    }

    @Test
    void geluOverAWideRange() {
        // gelu' = Φ(x) + x·φ(x) crosses zero near x = −0.75, where Φ's 2.3e-10 relative fit error is absolute
        checkWide("gelu", ActivationOpsTest::referenceGelu, ActivationOpsTest::referenceGeluGrad, 1e-10,
                (t, out, in, n) -> t.cpu.gelu(out, in, n), (t, dx, dy, in, n) -> t.cpu.geluBackward(dx, dy, in, n));
    }

    @Test
    void specialValues() {
        OpCheck t = new OpCheck(5);
        float[] x = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        Forward[] forwards = {(u, out, in, n) -> u.cpu.silu(out, in, n), (u, out, in, n) -> u.cpu.quickGelu(out, in, n),
                (u, out, in, n) -> u.cpu.gelu(out, in, n)};
        for (Forward forward : forwards) {
            Tensor out = t.tensor(new float[x.length]);
            forward.run(t, out, t.tensor(x), x.length);
            float[] y = t.host(out);
            assertEquals(0f, y[0]);
            assertEquals(-0f, y[1]);                      // the sign of zero survives, as x·σ(x) in float would
            assertTrue(Float.isNaN(y[2]), "NaN passes through");
            assertEquals(Float.POSITIVE_INFINITY, y[3]);
            assertEquals(0f, y[4], 0f);                   // the limit, not −∞·0
        }
        Backward[] backwards = {(u, dx, dy, in, n) -> u.cpu.siluBackward(dx, dy, in, n),
                (u, dx, dy, in, n) -> u.cpu.quickGeluBackward(dx, dy, in, n),
                (u, dx, dy, in, n) -> u.cpu.geluBackward(dx, dy, in, n)};
        for (Backward backward : backwards) {
            Tensor dx = t.tensor(new float[x.length]);
            backward.run(t, dx, t.tensor(new float[] {1, 1, 1, 1, 1}), t.tensor(x), x.length);
            float[] g = t.host(dx);
            assertEquals(0.5f, g[0]);
            assertEquals(0.5f, g[1]);
            assertTrue(Float.isNaN(g[2]), "NaN passes through");
            assertEquals(1f, g[3]);
            assertEquals(0f, g[4], 0f);
        }
    }

    @Test
    void gegluOverAWideRange() {
        // rows longer than a chunk (512) with a partial last chunk; gates over −100..100
        OpCheck t = new OpCheck(13);
        int rows = 3, cols = 1300;
        float[] x = t.uniform(rows * 2 * cols, -3, 3);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) x[r * 2 * cols + cols + j] = (float) (-100 + 200.0 * (r * cols + j) / (rows * cols));
        Tensor in = t.tensor(x), out = t.tensor(new float[rows * cols]);
        t.cpu.geglu(out, in, rows, cols);
        float[] dOut = t.randn(rows * cols);
        Tensor dx = t.tensor(new float[x.length]);
        t.cpu.gegluBackward(dx, t.tensor(dOut), in, rows, cols);
        float[] y = t.host(out), g = t.host(dx);
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                double h = x[r * 2 * cols + j], gate = x[r * 2 * cols + cols + j], dy = dOut[r * cols + j];
                float[][] checks = {{y[r * cols + j]}, {g[r * 2 * cols + j]}, {g[r * 2 * cols + cols + j]}};
                double[] expected = {h * referenceGelu(gate), dy * referenceGelu(gate), dy * h * referenceGeluGrad(gate)};
                double[] floor = {0, 0, 1e-10 * Math.abs(dy * h)};
                for (int k = 0; k < 3; k++) {
                    double err = Math.abs(checks[k][0] - expected[k]);
                    if (Math.abs(expected[k]) >= Float.MIN_NORMAL) worst = Math.max(worst, err / Math.abs(expected[k]));
                    assertTrue(err <= ROUNDED_ONCE * Math.abs(expected[k]) + floor[k] + Float.MIN_VALUE,
                            "geglu check " + k + " at gate " + gate + ": " + checks[k][0] + " vs " + expected[k]);
                }
            }
        }
        System.out.printf("geglu: worst relative error %.2e%n", worst);
    }
}
