package esdnative.backend.cpu;

import esdnative.tensor.Tensor;

import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Helpers for op tests: random inputs, tensors placed at an odd offset inside a larger buffer (so offset
 * bugs show) and float64 central finite differences; the comparisons are {@code Goldens.assertRelClose}'s.
 *
 * <p>Tolerances used by the tests, both as max|actual - expected| / max|expected|:
 * <ul>
 *   <li>{@link #FORWARD_TOL} 1e-5: a float32 op against its float64 definition differs by a few float32
 *       roundings (2^-24 ≈ 6e-8) per accumulated term; the fixtures' manifest records float32-vs-float64
 *       rel_linf of 5e-8 … 1e-6 for whole layers of the real model, so 1e-5 leaves a 10× margin.</li>
 *   <li>{@link #BACKWARD_TOL} 1e-5, the same: the float64 central differences it is checked against (step 1e-5)
 *       err by ~1e-10 (truncation) and ~1e-11 (rounding), so what remains is the float32 backward's own roundings,
 *       a second reduction over the forward's; measured at most 1.4e-6 over these tests (conv2d dWeight), a 7×
 *       margin; the manifest's gradient goldens measure rel_linf about 1e-6 between float32 and float64 for
 *       whole-model gradients and suggest 1e-5. A looser bound would let through the error an op bug makes.</li>
 * </ul>
 */
final class OpCheck {
    static final double FORWARD_TOL = 1e-5;
    static final double BACKWARD_TOL = 1e-5;
    private static final double FD_STEP = 1e-5;
    /** where test tensors start in their buffer */
    private static final int PAD = 3;

    private final Random random;
    final CpuBackend cpu = new CpuBackend();

    OpCheck(long seed) {
        random = new Random(seed);
    }

    /** standard normal floats (times scale) */
    float[] randn(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (random.nextGaussian() * scale);
        return a;
    }

    float[] randn(int n) { return randn(n, 1.0); }

    /** uniform floats in [lo, hi) */
    float[] uniform(int n, double lo, double hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + (hi - lo) * random.nextDouble());
        return a;
    }

    /** a CPU tensor holding data, placed PAD elements into a buffer with garbage around it */
    Tensor tensor(float[] data, int... shape) {
        Tensor buffer = cpu.fromHost(randn(data.length + 2 * PAD), data.length + 2 * PAD);
        Tensor t = buffer.view(PAD, shape);
        cpu.copyFromHost(t, data, 0);
        return t;
    }

    Tensor tensor(float[] data) { return tensor(data, data.length); }

    float[] host(Tensor t) { return cpu.toHost(t); }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }

    static float[] toFloat(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return f;
    }

    /**
     * Gradient of L = Σ dOut · f(inputs) with respect to inputs[which], by float64 central differences.
     */
    static double[] finiteDiff(Function<double[][], double[]> f, double[][] inputs, int which, double[] dOut) {
        double[] x = inputs[which];
        double[] grad = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + FD_STEP;
            double plus = dot(dOut, f.apply(inputs));
            x[i] = saved - FD_STEP;
            double minus = dot(dOut, f.apply(inputs));
            x[i] = saved;
            grad[i] = (plus - minus) / (2 * FD_STEP);
        }
        return grad;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    /**
     * A backward result that was pre-filled with {@code before}: checks actual - before ≈ expected, i.e. that
     * the op accumulated rather than overwrote.
     */
    static void assertAccumulated(String what, float[] actual, float[] before, double[] expected, double tol) {
        double[] withBefore = new double[expected.length];
        for (int i = 0; i < expected.length; i++) withBefore[i] = before[i] + expected[i];
        double maxErr = 0, maxRef = 0;
        for (int i = 0; i < actual.length; i++) {
            maxErr = Math.max(maxErr, Math.abs(actual[i] - withBefore[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        double err = maxRef == 0 ? maxErr : maxErr / maxRef;
        System.out.printf("%s: rel L-inf error %.2e%n", what, err);
        assertTrue(err <= tol, what + ": rel L∞ error of the accumulated gradient " + err + " > " + tol);
    }
}
