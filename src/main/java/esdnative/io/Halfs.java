package esdnative.io;

/**
 * float32 ↔ 16-bit float conversions. Widening is exact; narrowing rounds to nearest, ties to even, as torch's
 * {@code tensor.half()} and {@code tensor.bfloat16()} do.
 */
public final class Halfs {
    private Halfs() {}

    /** IEEE binary16 bits → float (exact). */
    public static float f16ToFloat(short bits) { return Float.float16ToFloat(bits); }

    /** float → IEEE binary16 bits, round to nearest even; overflow → ±inf; NaN stays NaN. */
    public static short floatToF16(float value) { return Float.floatToFloat16(value); }

    /** bfloat16 bits → float (exact: bfloat16 is the top half of a float32). */
    public static float bf16ToFloat(short bits) { return Float.intBitsToFloat((bits & 0xffff) << 16); }

    /** float → bfloat16 bits, round to nearest even on the dropped 16 bits; NaN stays a (quiet) NaN. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) return (short) ((bits >>> 16) | 0x0040);
        // add just under half an ulp, plus one if the kept part is odd, then truncate (carries may reach inf)
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
