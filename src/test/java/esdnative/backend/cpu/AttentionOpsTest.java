package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;

/** Softmax and multi-head attention against float64 loops; backwards against float64 finite differences. */
class AttentionOpsTest {

    static double[] naiveSoftmax(double[] x, int rows, int cols) {
        double[] y = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.exp(x[r * cols + j]);
            for (int j = 0; j < cols; j++) y[r * cols + j] = Math.exp(x[r * cols + j]) / sum;
        }
        return y;
    }

    @Test
    void softmaxForwardAndBackward() {
        OpCheck t = new OpCheck(21);
        int rows = 4, cols = 13;
        float[] x = t.randn(rows * cols, 3.0);
        x[5] = 80f;  // exp(80) overflows float32: only correct with the max subtracted
        Tensor out = t.tensor(new float[x.length]);
        t.cpu.softmax(out, t.tensor(x), rows, cols);
        double[][] in = {toDouble(x)};
        Function<double[][], double[]> f = a -> naiveSoftmax(a[0], rows, cols);
        Goldens.assertRelClose("softmax", f.apply(in), t.host(out), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(x.length));
        float[] before = t.randn(x.length);
        Tensor dx = t.tensor(before.clone());
        t.cpu.softmaxBackward(dx, t.tensor(toFloat(dOut)), out, rows, cols);
        assertAccumulated("softmax dIn", t.host(dx), before, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
    }

    /** out[b, i, h·d + e] = Σ_j softmax_j(scale · q_i · k_j, j ≤ i when causal) v[b, j, h·d + e] */
    static double[] naiveAttention(double[] q, double[] k, double[] v, int b, int heads, int lq, int lk, int d,
                                   double scale, boolean causal) {
        int ld = heads * d;
        double[] out = new double[b * lq * ld];
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < lq; i++) {
                    int allowed = causal ? Math.min(lk, i + 1) : lk;
                    double[] s = new double[allowed];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < allowed; j++) {
                        for (int e = 0; e < d; e++) {
                            s[j] += q[(bi * lq + i) * ld + h * d + e] * k[(bi * lk + j) * ld + h * d + e];
                        }
                        s[j] *= scale;
                        max = Math.max(max, s[j]);
                    }
                    for (int j = 0; j < allowed; j++) sum += Math.exp(s[j] - max);
                    for (int j = 0; j < allowed; j++) {
                        double p = Math.exp(s[j] - max) / sum;
                        for (int e = 0; e < d; e++) {
                            out[(bi * lq + i) * ld + h * d + e] += p * v[(bi * lk + j) * ld + h * d + e];
                        }
                    }
                }
        return out;
    }

    @ParameterizedTest(name = "b={0} heads={1} lq={2} lk={3} d={4} causal={5}")
    @CsvSource({
            "2, 3, 5, 7, 4, false",  // cross-attention shape: lq ≠ lk
            "2, 2, 6, 6, 3, true",   // CLIP's causal self-attention
            "1, 1, 7, 4, 5, true",   // causal with lq > lk
            "1, 2, 9, 1, 2, false",  // a single key: probabilities all 1
            "1, 2, 6, 5, 16, false", // heads wide enough for the GEMM path (AttentionOps.GEMM_MIN_D)
            "1, 1, 5, 5, 17, true",  // the GEMM path, causal
            "1, 2, 37, 19, 4, false", // narrow path: lq, lk beyond the 4-query and 4-key passes, not multiples of 16
            "2, 1, 21, 40, 8, true",  // narrow path: causal with more keys than queries (keys no query sees)
            "1, 1, 23, 1, 5, true",   // narrow path: causal with a single key
    })
    void attentionForwardAndBackward(int b, int heads, int lq, int lk, int d, boolean causal) {
        checkAttention(b, heads, lq, lk, d, causal);
    }

    /** every narrow head width, causal and not */
    @ParameterizedTest(name = "d={0}")
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
    void narrowHeadWidths(int d) {
        checkAttention(2, 2, 11, 6, d, d % 2 == 1);
    }

    /** more queries than one block of the narrow path: blocks after the first, causal masks across blocks */
    @Test
    void narrowPathOverSeveralQueryBlocks() {
        int lq = NarrowAttention.QUERY_BLOCK + 5;
        checkAttention(1, 1, lq, 7, 3, false);
        checkAttention(1, 1, lq, lq - 2, 1, true);
    }

    private static void checkAttention(int b, int heads, int lq, int lk, int d, boolean causal) {
        OpCheck t = new OpCheck(31L * b + 7L * heads + lq + 13L * lk + d);
        String name = "attention(b=" + b + ", heads=" + heads + ", lq=" + lq + ", lk=" + lk + ", d=" + d + ", causal="
                + causal + ")";
        float scale = (float) (1 / Math.sqrt(d));
        int ld = heads * d;
        float[] q = t.randn(b * lq * ld), k = t.randn(b * lk * ld), v = t.randn(b * lk * ld);
        Tensor qt = t.tensor(q), kt = t.tensor(k), vt = t.tensor(v);
        Tensor out = t.tensor(new float[b * lq * ld]), probs = t.tensor(new float[b * heads * lq * lk]);
        t.cpu.attention(out, probs, qt, kt, vt, b, heads, lq, lk, d, scale, causal);
        double[][] in = {toDouble(q), toDouble(k), toDouble(v)};
        Function<double[][], double[]> f = a -> naiveAttention(a[0], a[1], a[2], b, heads, lq, lk, d, scale, causal);
        double[] expected = f.apply(in);
        Goldens.assertRelClose(name, expected, t.host(out), FORWARD_TOL);

        Tensor outNoProbs = t.tensor(new float[b * lq * ld]);
        t.cpu.attention(outNoProbs, null, qt, kt, vt, b, heads, lq, lk, d, scale, causal);
        Goldens.assertRelClose(name + " without saved probs", expected, t.host(outNoProbs), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(out.dim(0)));
        float[] dqBefore = t.randn(q.length), dkBefore = t.randn(k.length), dvBefore = t.randn(v.length);
        Tensor dq = t.tensor(dqBefore.clone()), dk = t.tensor(dkBefore.clone()), dv = t.tensor(dvBefore.clone());
        t.cpu.attentionBackward(dq, dk, dv, t.tensor(toFloat(dOut)), qt, kt, vt, probs, b, heads, lq, lk, d, scale);
        assertAccumulated(name + " dq", t.host(dq), dqBefore, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dk", t.host(dk), dkBefore, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dv", t.host(dv), dvBefore, finiteDiff(f, in, 2, dOut), BACKWARD_TOL);
    }
}
