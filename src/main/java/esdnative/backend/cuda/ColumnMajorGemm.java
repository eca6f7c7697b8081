package esdnative.backend.cuda;

/**
 * The arguments of one column-major (cuBLAS) GEMM: C = alpha · op(A) · op(B) + beta · C with op(A) [m, k],
 * op(B) [k, n], C [m, n], batched over {@code batch} matrices spaced by the strides (elements).
 * opA/opB are cuBLAS's CUBLAS_OP_N (0) or CUBLAS_OP_T (1).
 *
 * <p>{@link #fromRowMajor} maps the backend's row-major GEMM onto it: a row-major matrix with row stride ld is, read
 * column-major, its own transpose with leading dimension ld. So row-major C = op(A) · op(B) is column-major
 * Cᵀ = op(B)ᵀ · op(A)ᵀ: the operands swap places (B first), m and n swap, and the trans flags and leading
 * dimensions stay with their matrices.
 */
record ColumnMajorGemm(int opA, int opB, int m, int n, int k, float alpha, int lda, long strideA,
                       int ldb, long strideB, float beta, int ldc, long strideC, int batch) {
    static final int OP_N = 0;
    static final int OP_T = 1;

    /**
     * The column-major call for a row-major GEMM (see {@link esdnative.backend.Backend#gemm}). Its "A" operand is
     * the row-major B and its "B" operand the row-major A: pass device addresses in that order.
     */
    static ColumnMajorGemm fromRowMajor(boolean transA, boolean transB, int m, int n, int k, float alpha,
                                        int lda, long strideA, int ldb, long strideB,
                                        float beta, int ldc, long strideC, int batch) {
        return new ColumnMajorGemm(transB ? OP_T : OP_N, transA ? OP_T : OP_N, n, m, k, alpha,
                ldb, strideB, lda, strideA, beta, ldc, strideC, batch);
    }

    @Override
    public String toString() {
        return "(op " + (opA == OP_T ? "T" : "N") + (opB == OP_T ? "T" : "N") + ", m=" + m + " n=" + n + " k=" + k
                + ", lda=" + lda + " ldb=" + ldb + " ldc=" + ldc + ", batch=" + batch + ")";
    }
}
