package esdnative.backend.cpu;

/** Sums faster than one chain of dependent adds, in a fixed order (the same result whatever the thread count). */
final class Sums {
    private Sums() {}

    /** Σ x[from + i] for i < n in double: four interleaved chains (i mod 4, the tail in the first), then (c0 + c1) + (c2 + c3). */
    static double interleaved(float[] x, int from, int n) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += x[from + i];
            s1 += x[from + i + 1];
            s2 += x[from + i + 2];
            s3 += x[from + i + 3];
        }
        for (; i < n; i++) s0 += x[from + i];
        return (s0 + s1) + (s2 + s3);
    }
}
