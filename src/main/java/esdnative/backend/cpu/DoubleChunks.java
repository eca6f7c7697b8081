package esdnative.backend.cpu;

/**
 * Elementwise float32 work computed in double, a chunk at a time: C2 does not vectorise a loop that stores into a
 * float array while reading another float array (they might overlap at different offsets), so the activations and
 * the norms widen their float inputs into per-thread double scratch (which cannot alias a tensor), compute there,
 * and store to float from it.
 */
final class DoubleChunks {
    /** elements per chunk: five scratch arrays of this length fit in a 32 KB L1 cache */
    static final int CHUNK = 512;

    // five arrays of CHUNK per thread; the ops that use them never call each other, so one set per thread serves all
    private static final ThreadLocal<double[][]> SCRATCH = ThreadLocal.withInitial(() -> new double[5][CHUNK]);

    private DoubleChunks() {}

    /** This thread's five scratch arrays of {@link #CHUNK} doubles. */
    static double[][] scratch() { return SCRATCH.get(); }

    /** dst[i] = src[from + i] for i < n. */
    static void widen(float[] src, int from, double[] dst, int n) {
        for (int i = 0; i < n; i++) dst[i] = src[from + i];
    }

    /** dst[from + i] = src[i] rounded to float, for i < n. */
    static void narrow(double[] src, float[] dst, int from, int n) {
        for (int i = 0; i < n; i++) dst[from + i] = (float) src[i];
    }
}
