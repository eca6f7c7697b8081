package esdnative.backend.cpu;

/**
 * exp(x) in float32 from arithmetic C2 can vectorise (Math.exp is a scalar call per element), for softmax rows.
 * exp(x) = 2^k · e^r with k = round(x · log2 e) and r = x − k · ln 2 (ln 2 in two parts, |r| ≤ ln2 / 2); e^r by its
 * degree-7 Taylor polynomial (truncation below 5e-9 relative), 2^k built in the exponent bits. Inputs below
 * {@link #MIN_INPUT} give e^MIN_INPUT ≈ 1.2e-38 instead of a denormal or 0; inputs above 88 are not supported
 * (softmax only exponentiates values ≤ 0). Relative error within a few float32 ulps of the exact value.
 */
final class FastExp {
    static final float MIN_INPUT = -87.3f;
    private static final float LOG2E = 1.44269504f;
    private static final float LN2_HI = 0.693145752f;       // ln 2 to 16 bits: k · LN2_HI is exact
    private static final float LN2_LO = 1.42860677e-6f;     // ln 2 − LN2_HI
    private static final float ROUNDER = 12582912f;         // 1.5 · 2^23: adding it rounds to an integer

    private FastExp() {}

    static float exp(float x) {
        float xc = Math.max(x, MIN_INPUT);
        float kf = (xc * LOG2E + ROUNDER) - ROUNDER;
        float r = (xc - kf * LN2_HI) - kf * LN2_LO;
        float p = 1f / 5040;
        p = p * r + 1f / 720;
        p = p * r + 1f / 120;
        p = p * r + 1f / 24;
        p = p * r + 1f / 6;
        p = p * r + 0.5f;
        p = p * r + 1f;
        p = p * r + 1f;
        return p * Float.intBitsToFloat(((int) kf + 127) << 23);
    }
}
