package esdnative.backend.cpu;

import static esdnative.backend.cpu.DoubleChunks.CHUNK;
import static esdnative.backend.cpu.DoubleChunks.scratch;
import static esdnative.backend.cpu.DoubleChunks.widen;

/**
 * Elementwise activations and their derivatives over float32 arrays: SiLU x·σ(x), CLIP's quick GELU x·σ(1.702x)
 * (both x·σ(αx)), exact GELU x·Φ(x), and diffusers' GEGLU h·gelu(gate).
 *
 * <p>Each call runs in chunks of {@link DoubleChunks#CHUNK} elements through stages of counted loops that HotSpot C2
 * vectorises: one loop widens the inputs into per-thread double scratch arrays ({@link DoubleChunks}), {@link FastExp#exp(double[], int)}
 * exponentiates a whole chunk, a last loop combines and rounds to float once. The arithmetic is double, so every
 * forward result is within about half a float32 ulp of its exact value, tails included, at half the vector width
 * of float: the rational below evaluated in float (fma Horner) alone errs by up to 3.5e-7 relative (simulated),
 * more than the 3e-7 per element the op tests allow GELU before exp's own error. Loops that store to a float
 * array read no other float array (C2 does not vectorise stores into an array that another float array read
 * at a different offset might overlap); double scratch cannot alias the float tensors.
 *
 * <p>Φ(−z) for z ≥ 0 is exp(−z²/2) · N(z)/D(z), a degree 5/6 rational fitted here (Sanathanan–Koerner
 * iteration with Lawson weights, relative minimax on [0, 14] against mpmath's erfc at 30 digits): relative
 * error 2.3e-10 on [0, 14], every coefficient positive, so Horner's rule has no cancellation. Beyond 14 it
 * keeps the asymptotic φ(z)/z shape (N5/D6 ≈ 1/√(2π)), where Φ(−z) < 1e-44 rounds to float zero or nearly
 * anyway. Written with the tail Φ(−|x|) rather than 1 + erf(x/√2), so x·Φ(x) keeps its relative accuracy for
 * large negative x, where it is tiny.
 */
final class ActivationOps {
    private ActivationOps() {}

    static final double QUICK_GELU_ALPHA = 1.702;

    private static final double INV_SQRT_2PI = 0.3989422804014327;
    private static final double FLOAT_MAX = Float.MAX_VALUE;
    /** |x| is clamped here for the normal tail: Φ(−37) ≈ 6e-301, and e^(−37²/2) is within exp's range */
    private static final double TAIL_CLAMP = 37;
    /** times any nonzero float, at least 1.4e255: min(max(x · STEP_GAIN, 0), 1) is the step x > 0 */
    private static final double STEP_GAIN = 1e300;

    private static final double N0 = 0.4999999999248559, N1 = 0.5140961611104624, N2 = 0.25657261702353584,
            N3 = 0.07390970036969495, N4 = 0.012246168171002563, N5 = 0.0009549486251044376;
    private static final double D1 = 1.826076867325899, D2 = 1.4701440022769074, D3 = 0.6737463849988142,
            D4 = 0.1876623053806357, D5 = 0.030696447588382376, D6 = 0.002393703297132756;


    // ---- x·σ(αx): SiLU (α = 1) and quick GELU ---------------------------------------------------------------

    /** out[outOff + j] = x·σ(αx) with x = in[inOff + j], j < n; out may be in (same offset). */
    static void xSigmoid(float[] out, int outOff, float[] in, int inOff, int n, double alpha) {
        double[][] s = scratch();
        double[] x = s[0], e = s[1];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            widenTimesMinusAlpha(in, inOff + c, x, e, len, alpha);
            FastExp.exp(e, len);                                      // e = exp(−αx), within double range
            for (int j = 0; j < len; j++) out[outOff + c + j] = (float) (x[j] / (1 + e[j]));
        }
    }

    /** dIn += dOut · d/dx[x·σ(αx)] = dOut · σ(a)·(1 + a·(1 − σ(a))) with a = αx, and 1 − σ(a) = e^−a·σ(a). */
    static void xSigmoidBackward(float[] dIn, int dInOff, float[] dOut, int dOutOff, float[] in, int inOff, int n,
                                 double alpha) {
        double[][] s = scratch();
        double[] x = s[0], e = s[1], dy = s[2];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            widenTimesMinusAlpha(in, inOff + c, x, e, len, alpha);
            widen(dOut, dOutOff + c, dy, len);
            FastExp.exp(e, len);
            for (int j = 0; j < len; j++) {
                double sigma = 1 / (1 + e[j]), a = alpha * Math.min(x[j], FLOAT_MAX);   // +∞: a·e^−a → 0
                double grad = sigma * (1 + a * (e[j] * sigma));
                dIn[dInOff + c + j] += (float) (dy[j] * grad);
            }
        }
    }

    /**
     * x[j] = in[off + j] raised to −FLOAT_MAX (so −∞ gives x·σ(x) → 0, not −∞/∞), e[j] = −α·x[j] within exp's
     * range (σ is 1 or 0 to double precision well inside it)
     */
    private static void widenTimesMinusAlpha(float[] in, int off, double[] x, double[] e, int len, double alpha) {
        for (int j = 0; j < len; j++) {
            double v = Math.max(in[off + j], -FLOAT_MAX);
            x[j] = v;
            e[j] = Math.min(Math.max(-alpha * v, -FastExp.DOUBLE_LIMIT), FastExp.DOUBLE_LIMIT);
        }
    }

    // ---- exact GELU x·Φ(x) ---------------------------------------------------------------------------------

    /** out[outOff + j] = x·Φ(x) with x = in[inOff + j], j < n; out may be in (same offset). */
    static void gelu(float[] out, int outOff, float[] in, int inOff, int n) {
        double[][] s = scratch();
        double[] x = s[0], ratio = s[1], gauss = s[2];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            normalParts(in, inOff + c, len, x, ratio, gauss);
            for (int j = 0; j < len; j++) out[outOff + c + j] = (float) gelu(x[j], ratio[j], gauss[j]);
        }
    }

    /** dIn += dOut · (Φ(x) + x·φ(x)) */
    static void geluBackward(float[] dIn, int dInOff, float[] dOut, int dOutOff, float[] in, int inOff, int n) {
        double[][] s = scratch();
        double[] x = s[0], ratio = s[1], gauss = s[2], dy = s[3];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            normalParts(in, inOff + c, len, x, ratio, gauss);
            widen(dOut, dOutOff + c, dy, len);
            for (int j = 0; j < len; j++) {
                dIn[dInOff + c + j] += (float) (dy[j] * geluGrad(x[j], ratio[j], gauss[j]));
            }
        }
    }

    /** out[outOff + j] = h·gelu(gate) with h = in[hOff + j], gate = in[gateOff + j], j < n (one GEGLU row). */
    static void geglu(float[] out, int outOff, float[] in, int hOff, int gateOff, int n) {
        double[][] s = scratch();
        double[] gate = s[0], ratio = s[1], gauss = s[2], h = s[3];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            normalParts(in, gateOff + c, len, gate, ratio, gauss);
            widen(in, hOff + c, h, len);
            for (int j = 0; j < len; j++) out[outOff + c + j] = (float) (h[j] * gelu(gate[j], ratio[j], gauss[j]));
        }
    }

    /** dIn[h] += dOut · gelu(gate), dIn[gate] += dOut · h · gelu'(gate), for one GEGLU row. */
    static void gegluBackward(float[] dIn, int dhOff, int dGateOff, float[] dOut, int dOutOff,
                              float[] in, int hOff, int gateOff, int n) {
        double[][] s = scratch();
        double[] gate = s[0], ratio = s[1], gauss = s[2], h = s[3], dy = s[4];
        for (int c = 0; c < n; c += CHUNK) {
            int len = Math.min(CHUNK, n - c);
            normalParts(in, gateOff + c, len, gate, ratio, gauss);
            widen(in, hOff + c, h, len);
            widen(dOut, dOutOff + c, dy, len);
            // two loops: each stores into dIn at one offset only
            for (int j = 0; j < len; j++) {
                dIn[dhOff + c + j] += (float) (dy[j] * gelu(gate[j], ratio[j], gauss[j]));
            }
            for (int j = 0; j < len; j++) {
                dIn[dGateOff + c + j] += (float) (dy[j] * h[j] * geluGrad(gate[j], ratio[j], gauss[j]));
            }
        }
    }

    /**
     * For j < len, with v = in[off + j]: x[j] = v, ratio[j] = Φ(−|v|)·e^(v²/2) by the rational, and
     * gauss[j] = e^(−v²/2) (down to e^−684 for large |v|, which any float times it rounds to zero);
     * {@link #cdf} finishes Φ(v) from them.
     */
    private static void normalParts(float[] in, int off, int len, double[] x, double[] ratio, double[] gauss) {
        for (int j = 0; j < len; j++) {
            double v = in[off + j];
            double z = Math.min(Math.abs(v), TAIL_CLAMP);
            x[j] = v;
            gauss[j] = -0.5 * z * z;
            double num = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(N5, z, N4), z, N3), z, N2), z, N1), z, N0);
            double den = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(D6, z, D5), z, D4), z, D3), z, D2),
                    z, D1), z, 1.0);
            ratio[j] = num / den;
        }
        FastExp.exp(gauss, len);                                      // z²/2 ≤ 684.5: within exp's range
    }

    /** Φ(x) from {@link #normalParts}: the tail Φ(−|x|) for x ≤ 0, 1 − tail above */
    private static double cdf(double x, double ratio, double gauss) {
        double tail = gauss * ratio;
        double positive = Math.min(Math.max(x * STEP_GAIN, 0), 1);
        return Math.fma(positive, 1 - 2 * tail, tail);
    }

    /** x·Φ(x), x raised to −FLOAT_MAX so x = −∞ gives 0, not −∞·0 */
    private static double gelu(double x, double ratio, double gauss) {
        return Math.max(x, -FLOAT_MAX) * cdf(x, ratio, gauss);
    }

    /** d/dx x·Φ(x) = Φ(x) + x·φ(x), x clamped to ±FLOAT_MAX so x = ±∞ gives 1 or 0, not ∞·0 */
    private static double geluGrad(double x, double ratio, double gauss) {
        return cdf(x, ratio, gauss) + Math.min(Math.max(x, -FLOAT_MAX), FLOAT_MAX) * INV_SQRT_2PI * gauss;
    }

}
