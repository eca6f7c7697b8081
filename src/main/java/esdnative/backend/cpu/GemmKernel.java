package esdnative.backend.cpu;

/**
 * The GEMM micro-kernel: a 4-row tile of C accumulated over a packed k-block, 4 k-steps at a time.
 * Written for HotSpot C2's auto-vectoriser: the inner loop runs over columns j with every row of the
 * accumulator and of the packed B panel a separate array, all indexed by the same j (C2 vectorises that,
 * but not rows of one array at run-time offsets, nor arrays indexed at different offsets, which might
 * overlap), and Math.fma compiles to vector FMA instructions.
 * 4 rows × 4 k-steps was the fastest shape measured on AVX-512 (more arrays per loop stop C2 vectorising).
 */
final class GemmKernel {
    /** rows of C per micro-tile. */
    static final int MR = 4;
    /** k-steps per kernel iteration; packed k-blocks are zero-padded to a multiple of this. */
    static final int KU = 4;

    private GemmKernel() {}

    /**
     * acc[r][j] += Σ_p aPack[p·MR + r] · panel[p][j] for r < MR, j < width, p < kcPad (ascending p,
     * a fixed fma chain, so the result does not depend on which thread runs it).
     * aPack: [kcPad, MR] packed rows of op(A); panel: kcPad rows of op(B), each a separate array.
     */
    static void accumulate(float[][] acc, float[] aPack, float[][] panel, int width, int kcPad) {
        float[] c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3];
        for (int p = 0; p < kcPad; p += KU) {
            float[] x0 = panel[p], x1 = panel[p + 1], x2 = panel[p + 2], x3 = panel[p + 3];
            int ap = p * MR;
            float a00 = aPack[ap], a10 = aPack[ap + 1], a20 = aPack[ap + 2], a30 = aPack[ap + 3];
            float a01 = aPack[ap + 4], a11 = aPack[ap + 5], a21 = aPack[ap + 6], a31 = aPack[ap + 7];
            float a02 = aPack[ap + 8], a12 = aPack[ap + 9], a22 = aPack[ap + 10], a32 = aPack[ap + 11];
            float a03 = aPack[ap + 12], a13 = aPack[ap + 13], a23 = aPack[ap + 14], a33 = aPack[ap + 15];
            for (int j = 0; j < width; j++) {
                float y0 = x0[j], y1 = x1[j], y2 = x2[j], y3 = x3[j];
                c0[j] = Math.fma(a03, y3, Math.fma(a02, y2, Math.fma(a01, y1, Math.fma(a00, y0, c0[j]))));
                c1[j] = Math.fma(a13, y3, Math.fma(a12, y2, Math.fma(a11, y1, Math.fma(a10, y0, c1[j]))));
                c2[j] = Math.fma(a23, y3, Math.fma(a22, y2, Math.fma(a21, y1, Math.fma(a20, y0, c2[j]))));
                c3[j] = Math.fma(a33, y3, Math.fma(a32, y2, Math.fma(a31, y1, Math.fma(a30, y0, c3[j]))));
            }
        }
    }
}
