package esdnative.backend.cuda;

import esdnative.backend.cpu.Gemm;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The row-major → column-major mapping handed to cuBLAS, checked without a GPU: a plain Java implementation of
 * cuBLAS's documented column-major GEMM, called with the mapped arguments, must give the row-major product that
 * the CPU backend's sgemm gives.
 */
class ColumnMajorGemmTest {

    @Test
    void everyTransposeCombinationWithPaddedRowsAndBatches() {
        SplittableRandom random = new SplittableRandom(7);
        int m = 5, n = 7, k = 3, batch = 3;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (long sharedA : new long[] {0, 1}) {
                    int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
                    long strideA = sharedA == 0 ? 0 : (long) (ta ? k : m) * lda + 4;
                    long strideB = (long) (tb ? n : k) * ldb + 1;
                    long strideC = (long) m * ldc + 2;
                    float[] a = random(random, (int) ((batch - 1) * strideA + (ta ? k : m) * lda));
                    float[] b = random(random, (int) ((batch - 1) * strideB + (tb ? n : k) * ldb));
                    float[] c = random(random, (int) ((batch - 1) * strideC + m * ldc));
                    float[] expected = c.clone();
                    for (int p = 0; p < batch; p++) {
                        Gemm.sgemm(ta, tb, m, n, k, 0.7f, a, (int) (p * strideA), lda, b, (int) (p * strideB), ldb,
                                0.3f, expected, (int) (p * strideC), ldc);
                    }
                    ColumnMajorGemm g = ColumnMajorGemm.fromRowMajor(ta, tb, m, n, k, 0.7f, lda, strideA, ldb,
                            strideB, 0.3f, ldc, strideC, batch);
                    float[] actual = c.clone();
                    columnMajorGemm(g, b, a, actual); // cuBLAS's A is the row-major B
                    for (int i = 0; i < c.length; i++) {
                        assertEquals(expected[i], actual[i], 1e-5, "trans " + ta + tb + " shared " + sharedA + " at " + i);
                    }
                }
            }
        }
    }

    /** cuBLAS's GEMM as documented: column-major, element (i, j) of X at X[i + j·ld]. */
    private static void columnMajorGemm(ColumnMajorGemm g, float[] a, float[] b, float[] c) {
        for (int p = 0; p < g.batch(); p++) {
            long aOff = p * g.strideA(), bOff = p * g.strideB(), cOff = p * g.strideC();
            for (int j = 0; j < g.n(); j++) {
                for (int i = 0; i < g.m(); i++) {
                    float sum = 0;
                    for (int l = 0; l < g.k(); l++) {
                        float av = g.opA() == ColumnMajorGemm.OP_N ? a[(int) (aOff + i + (long) l * g.lda())]
                                : a[(int) (aOff + l + (long) i * g.lda())];
                        float bv = g.opB() == ColumnMajorGemm.OP_N ? b[(int) (bOff + l + (long) j * g.ldb())]
                                : b[(int) (bOff + j + (long) l * g.ldb())];
                        sum += av * bv;
                    }
                    int at = (int) (cOff + i + (long) j * g.ldc());
                    c[at] = g.alpha() * sum + g.beta() * c[at];
                }
            }
        }
    }

    private static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        return x;
    }
}
