package esdnative.backend.cuda;

/**
 * float32 → bfloat16 by its definition, for the tests: of the two bf16 values around x (x's bits cut to the top 16,
 * and the next bf16 away from zero) the nearer one, ties to the one with an even last bit; past the largest bf16 the
 * next one up is 2^128, i.e. infinity. Written from the definition, not from the kernel's carry trick.
 */
final class Bf16Reference {
    private Bf16Reference() {}

    /** x rounded to bfloat16, as the float32 it stands for (NaN and infinities as they are). */
    static float round(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int cut = bits & 0xffff0000, next = cut + 0x10000;
        double below = Math.abs(x - (double) Float.intBitsToFloat(cut));
        double above = Math.abs(valueOf(next) - x);
        int chosen = below < above ? cut : above < below ? next : ((cut >>> 16) & 1) == 0 ? cut : next;
        return Float.intBitsToFloat(chosen);
    }

    /** Every element rounded. */
    static float[] round(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) out[i] = round(x[i]);
        return out;
    }

    /** The value of float32 bits, with infinity counted as 2^128 (the bf16 step past the largest finite value). */
    private static double valueOf(int bits) {
        if ((bits & 0x7fffffff) == 0x7f800000) return Math.copySign(Math.scalb(1.0, 128), Float.intBitsToFloat(bits));
        return Float.intBitsToFloat(bits);
    }
}
