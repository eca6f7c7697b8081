package esdnative.backend.cpu;

/**
 * exp over arrays in loops C2 vectorises (Math.exp is a scalar call per element): float32 rows for softmax,
 * double chunks for the activations ({@link #exp(double[], int)}).
 *
 * <p>Float rows: exp(x) = 2^k · e^r with k = round(x · log2 e), r = x − k · ln 2 (ln 2 in two parts, |r| ≤ ln2 / 2), e^r by its
 * degree-7 Taylor polynomial (truncation below 5e-9 relative); measured within 1.1e-7 relative of exp over
 * [−87.3, 0]. 2^k is built in the exponent bits, in a second loop: C2 vectorises float → int but not
 * Float.intBitsToFloat, which would keep the whole polynomial scalar. Inputs below {@link #MIN_INPUT} give
 * e^MIN_INPUT ≈ 1.2e-38 rather than a denormal; inputs must be ≤ 88 (softmax exponentiates values ≤ 0).
 */
final class FastExp {
    static final float MIN_INPUT = -87.3f;
    private static final float LOG2E = 1.44269504f;
    private static final float LN2_HI = 0.693145752f;       // ln 2 to 16 bits: k · LN2_HI is exact
    private static final float LN2_LO = 1.42860677e-6f;     // ln 2 − LN2_HI
    private static final float ROUNDER = 12582912f;         // 1.5 · 2^23: adding it rounds to an integer

    /** the double exp's arguments must lie within ±this: e^±700 stays finite and normal in double */
    static final double DOUBLE_LIMIT = 700;
    private static final double LOG2E_D = 1.4426950408889634;
    private static final double LN2_D = 0.6931471805599453;
    private static final double ROUNDER_D = 6755399441055744.0;   // 1.5 · 2^52

    // 2^k exponent bits per element; a row never re-enters its thread, so per-thread is safe
    private static final ThreadLocal<int[][]> BITS = ThreadLocal.withInitial(() -> new int[][] {new int[0]});
    private static final ThreadLocal<long[][]> DOUBLE_BITS = ThreadLocal.withInitial(() -> new long[][] {new long[0]});

    private FastExp() {}

    /** a[off + j] = exp(a[off + j] − shift) for j < n. */
    static void expShifted(float[] a, int off, int n, float shift) {
        int[] bits = exponentScratch(n);
        for (int j = 0; j < n; j++) {
            float x = Math.max(a[off + j] - shift, MIN_INPUT);
            float kf = (x * LOG2E + ROUNDER) - ROUNDER;
            a[off + j] = expReduced(x, kf);
            bits[j] = ((int) kf + 127) << 23;
        }
        for (int j = 0; j < n; j++) a[off + j] *= Float.intBitsToFloat(bits[j]);
    }

    /**
     * a[j] = exp(a[j]) for j < n, in double, for arguments within ±{@link #DOUBLE_LIMIT} (the callers clamp, where
     * they must, together with their own range work; NaN stays NaN).
     * Same scheme as the float rows with ln 2 in one double and a degree-8 Taylor polynomial (truncation below
     * 2e-10 relative), so results are within ~3e-10 of exp: far below the float32 rounding the activations
     * apply afterwards. 2^k is built in a second, scalar loop (C2 does not vectorise Double.longBitsToDouble).
     */
    static void exp(double[] a, int n) {
        long[][] holder = DOUBLE_BITS.get();
        if (holder[0].length < n) holder[0] = new long[Math.max(n, 2 * holder[0].length)];
        long[] bits = holder[0];
        for (int j = 0; j < n; j++) {
            double x = a[j];
            double kd = (x * LOG2E_D + ROUNDER_D) - ROUNDER_D;
            double r = x - kd * LN2_D;
            double p = 1.0 / 40320;
            p = Math.fma(p, r, 1.0 / 5040);
            p = Math.fma(p, r, 1.0 / 720);
            p = Math.fma(p, r, 1.0 / 120);
            p = Math.fma(p, r, 1.0 / 24);
            p = Math.fma(p, r, 1.0 / 6);
            p = Math.fma(p, r, 0.5);
            p = Math.fma(p, r, 1.0);
            p = Math.fma(p, r, 1.0);
            a[j] = p;
            bits[j] = ((long) kd + 1023) << 52;
        }
        for (int j = 0; j < n; j++) a[j] *= Double.longBitsToDouble(bits[j]);
    }

    /** a[i] = exp(a[i] − shift[i]) for from ≤ i < to: one shift per element (a softmax down columns). */
    static void expShifted(float[] a, float[] shift, int from, int to) {
        int[] bits = exponentScratch(to);
        for (int i = from; i < to; i++) {
            float x = Math.max(a[i] - shift[i], MIN_INPUT);
            float kf = (x * LOG2E + ROUNDER) - ROUNDER;
            a[i] = expReduced(x, kf);
            bits[i] = ((int) kf + 127) << 23;
        }
        for (int i = from; i < to; i++) a[i] *= Float.intBitsToFloat(bits[i]);
    }

    /** e^r for r = x − kf · ln 2 (kf = x · log2 e rounded), by the degree-7 Taylor polynomial; inlined by C2. */
    private static float expReduced(float x, float kf) {
        float r = (x - kf * LN2_HI) - kf * LN2_LO;
        float p = 1f / 5040;
        p = p * r + 1f / 720;
        p = p * r + 1f / 120;
        p = p * r + 1f / 24;
        p = p * r + 1f / 6;
        p = p * r + 0.5f;
        p = p * r + 1f;
        return p * r + 1f;
    }

    /** this thread's array for 2^k exponent bits, at least n long */
    private static int[] exponentScratch(int n) {
        int[][] holder = BITS.get();
        if (holder[0].length < n) holder[0] = new int[Math.max(n, 2 * holder[0].length)];
        return holder[0];
    }
}
