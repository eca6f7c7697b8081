package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;

/** Batched strided GEMM, row bias and its reduction, transpose: against float64 loops / finite differences. */
class LinearOpsTest {

    @ParameterizedTest(name = "transA={0} transB={1} m={2} n={3} k={4} batch={5} alpha={6} beta={7}")
    @CsvSource({
            "false, false, 5, 7, 3, 1, 1.0, 0.0",
            "true,  false, 4, 6, 9, 3, 0.5, 1.0",
            "false, true,  7, 3, 5, 2, 1.0, 0.25",
            "true,  true,  3, 5, 4, 2, -2.0, 0.0",
    })
    void batchedStridedGemm(boolean transA, boolean transB, int m, int n, int k, int batch, float alpha, float beta) {
        OpCheck t = new OpCheck(m * 100L + n * 10L + k + batch);
        // leading dimensions wider than the matrices and batch strides with gaps, as attention heads use them
        int rowsA = transA ? k : m, colsA = transA ? m : k, lda = colsA + 2;
        int rowsB = transB ? n : k, colsB = transB ? k : n, ldb = colsB + 1;
        int ldc = n + 3;
        long strideA = (long) rowsA * lda + 5, strideB = (long) rowsB * ldb + 2, strideC = (long) m * ldc + 4;
        float[] a = t.randn((int) (strideA * batch)), b = t.randn((int) (strideB * batch)), c = t.randn((int) (strideC * batch));
        Tensor ct = t.tensor(c.clone());
        t.cpu.gemm(transA, transB, m, n, k, alpha, t.tensor(a), lda, strideA, t.tensor(b), ldb, strideB,
                beta, ct, ldc, strideC, batch);
        double[] expected = toDouble(c);  // untouched outside the C blocks
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double sum = 0;
                    for (int p = 0; p < k; p++) {
                        double av = transA ? a[(int) (bi * strideA) + p * lda + i] : a[(int) (bi * strideA) + i * lda + p];
                        double bv = transB ? b[(int) (bi * strideB) + j * ldb + p] : b[(int) (bi * strideB) + p * ldb + j];
                        sum += av * bv;
                    }
                    int at = (int) (bi * strideC) + i * ldc + j;
                    expected[at] = alpha * sum + (beta == 0 ? 0 : beta * c[at]);
                }
        Goldens.assertRelClose("gemm", expected, t.host(ct), FORWARD_TOL);
    }

    @Test
    void rowBiasAndItsGradient() {
        OpCheck t = new OpCheck(3);
        int rows = 6, cols = 70;  // > 64 columns: two blocks in sumRows
        float[] y = t.randn(rows * cols), bias = t.randn(cols);
        Tensor yt = t.tensor(y.clone());
        t.cpu.addRowBias(yt, t.tensor(bias), rows, cols);
        double[][] in = {toDouble(y), toDouble(bias)};
        Function<double[][], double[]> f = a -> {
            double[] out = a[0].clone();
            for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) out[r * cols + j] += a[1][j];
            return out;
        };
        Goldens.assertRelClose("addRowBias", f.apply(in), t.host(yt), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(rows * cols));
        float[] before = t.randn(cols);
        Tensor db = t.tensor(before.clone());
        t.cpu.sumRows(db, t.tensor(toFloat(dOut)), rows, cols);
        assertAccumulated("sumRows", t.host(db), before, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
    }

    @ParameterizedTest(name = "batch={0} rows={1} cols={2}")
    @CsvSource({"2, 3, 5", "2, 7, 37", "2, 37, 20", "1, 64, 32"})  // column and row tiles, with and without tails
    void transposeLastTwoDimensions(int batch, int rows, int cols) {
        OpCheck t = new OpCheck(4);
        float[] x = t.randn(batch * rows * cols);
        Tensor out = t.tensor(new float[x.length]);
        t.cpu.transpose(out, t.tensor(x), batch, rows, cols);
        double[] expected = new double[x.length];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) expected[(b * cols + c) * rows + r] = x[(b * rows + r) * cols + c];
        Goldens.assertRelClose("transpose", expected, t.host(out), 0);
    }
}
