package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.assertClose;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SiLU, exact GELU, quick GELU and GEGLU against their float64 definitions, with a float64 erf written here
 * independently of {@link Erf} (power series below 2.5, continued fraction above); backwards against finite
 * differences.
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
    void erfcHasFloat32RelativeAccuracy() {
        double worst = 0;
        for (double x = -6; x <= 9; x += 1e-3) {
            double ref = referenceErfc(x);
            worst = Math.max(worst, Math.abs(Erf.erfc(x) - ref) / ref);
        }
        System.out.printf("Erf.erfc: worst relative error on [-6, 9] %.2e%n", worst);
        assertTrue(worst < 1.3e-7, "erfc relative error " + worst);  // the formula's documented bound is 1.2e-7
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
        assertClose(name, t.host(out), expected, FORWARD_TOL);
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
        assertClose("geglu", t.host(out), naive.apply(inputs), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(rows * cols));
        float[] before = t.randn(x.length);
        Tensor dx = t.tensor(before.clone());
        t.cpu.gegluBackward(dx, t.tensor(toFloat(dOut)), in, rows, cols);
        assertAccumulated("geglu backward", t.host(dx), before, finiteDiff(naive, inputs, 0, dOut), BACKWARD_TOL);
    }
}
