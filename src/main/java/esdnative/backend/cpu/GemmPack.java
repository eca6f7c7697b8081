package esdnative.backend.cpu;

import java.util.Arrays;

/**
 * Packing for the blocked GEMM: copies a k-block of op(B) into separate row arrays (the panel) and a
 * 4-row strip of op(A) into one interleaved array, so the micro-kernel reads both contiguously.
 * Padding rows/columns are zero, which leaves the fma sums unchanged.
 */
final class GemmPack {
    private GemmPack() {}

    /**
     * A strided matrix view: element (row, col) is data[off + row·rowStride + col·colStride].
     * op(X) of a row-major X with leading dimension ld is (ld, 1), or (1, ld) when transposed.
     */
    record Operand(float[] data, int off, int rowStride, int colStride) {
        static Operand of(boolean trans, float[] data, int off, int ld) {
            return trans ? new Operand(data, off, 1, ld) : new Operand(data, off, ld, 1);
        }

        Operand transposed() { return new Operand(data, off, colStride, rowStride); }
    }

    /**
     * panel[p][j] = B(p0 + p, col0 + j) for p < kc, j < width; rows kc..kcPad-1 become zero.
     */
    static void packPanel(Operand b, int p0, int kc, int kcPad, int col0, int width, float[][] panel) {
        float[] src = b.data();
        if (b.colStride() == 1) {
            // op(B) rows are contiguous: one copy per row
            for (int p = 0; p < kc; p++) {
                System.arraycopy(src, b.off() + (p0 + p) * b.rowStride() + col0, panel[p], 0, width);
            }
        } else {
            // op(B) columns are contiguous (B transposed): a transpose, 8 columns at a time so each panel row's
            // cache line is filled by consecutive writes while 8 source columns stream in
            int cs = b.colStride(), rs = b.rowStride();
            int j = 0;
            for (; j + 8 <= width; j += 8) {
                int base = b.off() + (col0 + j) * cs + p0 * rs;
                for (int p = 0; p < kc; p++) {
                    float[] row = panel[p];
                    int at = base + p * rs;
                    row[j] = src[at];
                    row[j + 1] = src[at + cs];
                    row[j + 2] = src[at + 2 * cs];
                    row[j + 3] = src[at + 3 * cs];
                    row[j + 4] = src[at + 4 * cs];
                    row[j + 5] = src[at + 5 * cs];
                    row[j + 6] = src[at + 6 * cs];
                    row[j + 7] = src[at + 7 * cs];
                }
            }
            for (; j < width; j++) {
                int base = b.off() + (col0 + j) * cs + p0 * rs;
                for (int p = 0; p < kc; p++) panel[p][j] = src[base + p * rs];
            }
        }
        for (int p = kc; p < kcPad; p++) Arrays.fill(panel[p], 0, width, 0f);
    }

    /** aPack[p·MR + r] = A(row0 + r, p0 + p) for r < rows, p < kc; zero for r ≥ rows or p ≥ kc (up to kcPad). */
    static void packStrip(Operand a, int row0, int rows, int p0, int kc, int kcPad, float[] aPack) {
        final int mr = GemmKernel.MR;
        float[] src = a.data();
        int rs = a.rowStride(), cs = a.colStride();
        if (rows < mr || kc < kcPad) Arrays.fill(aPack, 0, kcPad * mr, 0f);
        // p outside: with A transposed the strip's rows at one p are adjacent in memory
        for (int p = 0; p < kc; p++) {
            int at = a.off() + row0 * rs + (p0 + p) * cs;
            for (int r = 0; r < rows; r++) aPack[p * mr + r] = src[at + r * rs];
        }
    }
}
