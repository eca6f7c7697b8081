package esdnative.backend.cpu;

/**
 * Row-major single-precision GEMM on Java arrays: C = alpha · op(A) · op(B) + beta · C,
 * op(A) [m, k], op(B) [k, n], C [m, n]; lda/ldb/ldc are row strides as stored.
 * Deterministic: each element of C is summed over k in ascending order by exactly one thread.
 */
public final class Gemm {
    private Gemm() {}

    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        Parallel.forEach(m, i -> {
            int cRow = cOff + i * ldc;
            for (int j = 0; j < n; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[aOff + p * lda + i] : a[aOff + i * lda + p];
                    float bv = transB ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j];
                    sum += av * bv;
                }
                c[cRow + j] = (beta == 0f ? 0f : beta * c[cRow + j]) + alpha * sum;
            }
        });
    }
}
