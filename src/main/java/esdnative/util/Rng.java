package esdnative.util;

/**
 * A small, seedable, checkpointable random generator (xoshiro256**, seeded through SplitMix64): the whole state is
 * four longs, so a training run can save and restore it and continue bit-identically.
 * Normal samples use the Box–Muller transform in double precision.
 */
public final class Rng {
    private long s0, s1, s2, s3;

    public Rng(long seed) {
        long x = seed;
        s0 = splitMix(x += 0x9E3779B97F4A7C15L);
        s1 = splitMix(x += 0x9E3779B97F4A7C15L);
        s2 = splitMix(x += 0x9E3779B97F4A7C15L);
        s3 = splitMix(x + 0x9E3779B97F4A7C15L);
    }

    private Rng(long[] state) {
        restore(state);
    }

    /** A generator continuing from a saved state. */
    public static Rng fromState(long[] state) { return new Rng(state); }

    public long[] state() { return new long[] {s0, s1, s2, s3}; }

    public void restore(long[] state) {
        if (state.length != 4) throw new IllegalArgumentException("Rng state has 4 words, got " + state.length);
        s0 = state[0]; s1 = state[1]; s2 = state[2]; s3 = state[3];
    }

    private static long splitMix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    public long nextLong() {
        long result = Long.rotateLeft(s1 * 5, 7) * 9;
        long t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = Long.rotateLeft(s3, 45);
        return result;
    }

    /** Uniform in [0, 1) with 53 random bits. */
    public double nextDouble() { return (nextLong() >>> 11) * 0x1.0p-53; }

    /** Uniform integer in [lo, hi) (unbiased, by rejection). */
    public int nextInt(int lo, int hi) {
        if (hi <= lo) throw new IllegalArgumentException("empty range [" + lo + ", " + hi + ")");
        long bound = (long) hi - lo;
        long limit = Long.remainderUnsigned(-bound, bound); // values below this would bias the result
        while (true) {
            long r = nextLong();
            if (Long.compareUnsigned(r, limit) >= 0) return (int) (lo + Long.remainderUnsigned(r, bound));
        }
    }

    /** Fills {@code out} with standard normal samples. */
    public void normal(float[] out) {
        for (int i = 0; i < out.length; i += 2) {
            double u1 = 1.0 - nextDouble(); // (0, 1]: log is finite
            double u2 = nextDouble();
            double r = Math.sqrt(-2.0 * Math.log(u1));
            out[i] = (float) (r * Math.cos(2 * Math.PI * u2));
            if (i + 1 < out.length) out[i + 1] = (float) (r * Math.sin(2 * Math.PI * u2));
        }
    }

    public float[] normal(int n) {
        float[] out = new float[n];
        normal(out);
        return out;
    }
}
