package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static esdnative.backend.cpu.AttentionOpsTest.naiveAttention;
import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;
import static esdnative.testing.Goldens.assertRelClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The fused attention (attentionWithStats / attentionBackwardFromStats): forward and log-sum-exps against float64
 * loops, the three gradients against float64 finite differences (small shapes) and against the probabilities-based
 * kernel (shapes of several query and key blocks, SD's head widths), and the same bits on any thread count.
 */
class FusedAttentionTest {

    /** lse[b, h, i] = log Σ_j exp(scale · q_i · k_j), in float64 */
    static double[] naiveLogSumExp(double[] q, double[] k, int b, int heads, int lq, int lk, int d, double scale) {
        int ld = heads * d;
        double[] lse = new double[b * heads * lq];
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < lq; i++) {
                    double[] s = new double[lk];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < lk; j++) {
                        for (int e = 0; e < d; e++) s[j] += q[(bi * lq + i) * ld + h * d + e] * k[(bi * lk + j) * ld + h * d + e];
                        s[j] *= scale;
                        max = Math.max(max, s[j]);
                    }
                    for (int j = 0; j < lk; j++) sum += Math.exp(s[j] - max);
                    lse[(bi * heads + h) * lq + i] = max + Math.log(sum);
                }
        return lse;
    }

    /** small shapes: every gradient by finite differences; tiny head widths (padded to the kernel's 4) and SD's */
    @ParameterizedTest(name = "b={0} heads={1} lq={2} lk={3} d={4}")
    @CsvSource({
            "2, 3, 5, 7, 4",     // cross-attention shape: lq ≠ lk
            "1, 2, 9, 1, 2",     // a single key: probabilities all 1
            "1, 1, 6, 5, 1",     // d = 1
            "2, 1, 7, 6, 3",     // d not a multiple of 4
            "1, 2, 11, 6, 5",
            "1, 1, 5, 9, 8",
            "1, 1, 4, 6, 40",    // SD 1.x head widths
            "1, 1, 3, 5, 80",
            "1, 1, 3, 4, 160",
            "1, 2, 4, 5, 64",    // SD 2.x / CLIP
    })
    void againstFiniteDifferences(int b, int heads, int lq, int lk, int d) {
        OpCheck t = new OpCheck(41L * b + 5L * heads + lq + 17L * lk + d);
        String name = "fused attention(b=" + b + ", heads=" + heads + ", lq=" + lq + ", lk=" + lk + ", d=" + d + ")";
        float scale = (float) (1 / Math.sqrt(d));
        int ld = heads * d;
        float[] q = t.randn(b * lq * ld), k = t.randn(b * lk * ld), v = t.randn(b * lk * ld);
        Tensor qt = t.tensor(q), kt = t.tensor(k), vt = t.tensor(v);
        Tensor out = t.tensor(new float[b * lq * ld]), stats = t.tensor(new float[b * heads * lq]);
        t.cpu.attentionWithStats(out, stats, qt, kt, vt, b, heads, lq, lk, d, scale);
        double[][] in = {toDouble(q), toDouble(k), toDouble(v)};
        Function<double[][], double[]> f = a -> naiveAttention(a[0], a[1], a[2], b, heads, lq, lk, d, scale, false);
        assertRelClose(name, f.apply(in), t.host(out), FORWARD_TOL);
        assertRelClose(name + " log-sum-exp", naiveLogSumExp(in[0], in[1], b, heads, lq, lk, d, scale), t.host(stats), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(b * lq * ld));
        float[] dqBefore = t.randn(q.length), dkBefore = t.randn(k.length), dvBefore = t.randn(v.length);
        Tensor dq = t.tensor(dqBefore.clone()), dk = t.tensor(dkBefore.clone()), dv = t.tensor(dvBefore.clone());
        t.cpu.attentionBackwardFromStats(dq, dk, dv, t.tensor(toFloat(dOut)), qt, kt, vt, out, stats, b, heads, lq, lk, d, scale);
        assertAccumulated(name + " dq", t.host(dq), dqBefore, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dk", t.host(dk), dkBefore, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
        assertAccumulated(name + " dv", t.host(dv), dvBefore, finiteDiff(f, in, 2, dOut), BACKWARD_TOL);
    }

    /**
     * Several query and key blocks, partial last blocks, SD's head widths and SD's cross-attention (77 keys): the
     * forward against float64, the gradients against the probabilities-based kernel (itself checked against finite
     * differences in AttentionOpsTest). Both are float32 with sums over at most a few hundred terms, so they agree
     * to float32 noise: 1e-5 of the largest gradient.
     */
    @ParameterizedTest(name = "b={0} heads={1} lq={2} lk={3} d={4}")
    @CsvSource({
            "1, 2, 300, 77, 40",
            "2, 1, 131, 260, 80",
            "1, 1, 257, 129, 160",
            "1, 2, 129, 300, 64",
            "1, 1, 140, 133, 3",
            "1, 1, 128, 128, 8",
    })
    void againstTheProbabilitiesKernel(int b, int heads, int lq, int lk, int d) {
        OpCheck t = new OpCheck(7L * lq + lk + d);
        String name = "fused attention(b=" + b + ", heads=" + heads + ", lq=" + lq + ", lk=" + lk + ", d=" + d + ")";
        float scale = (float) (1 / Math.sqrt(d));
        int ld = heads * d;
        float[] q = t.randn(b * lq * ld, 2.0), k = t.randn(b * lk * ld), v = t.randn(b * lk * ld);
        Tensor qt = t.tensor(q), kt = t.tensor(k), vt = t.tensor(v);
        Tensor out = t.tensor(new float[b * lq * ld]), stats = t.tensor(new float[b * heads * lq]);
        t.cpu.attentionWithStats(out, stats, qt, kt, vt, b, heads, lq, lk, d, scale);
        double[] qd = toDouble(q), kd = toDouble(k);
        double[] expected = naiveAttention(qd, kd, toDouble(v), b, heads, lq, lk, d, scale, false);
        assertRelClose(name, expected, t.host(out), FORWARD_TOL);
        assertRelClose(name + " log-sum-exp", naiveLogSumExp(qd, kd, b, heads, lq, lk, d, scale), t.host(stats), FORWARD_TOL);
        // attention without saved probabilities runs the same kernel for heads of the GEMM path's width
        Tensor plain = t.tensor(new float[b * lq * ld]);
        t.cpu.attention(plain, null, qt, kt, vt, b, heads, lq, lk, d, scale, false);
        assertRelClose(name + " without saved probabilities", expected, t.host(plain), FORWARD_TOL);
        if (d >= AttentionOps.GEMM_MIN_D) assertArrayEquals(t.host(out), t.host(plain));

        Tensor dOut = t.tensor(t.randn(b * lq * ld));
        Tensor probs = t.tensor(new float[b * heads * lq * lk]);
        t.cpu.attention(t.tensor(new float[b * lq * ld]), probs, qt, kt, vt, b, heads, lq, lk, d, scale, false);
        Tensor dqRef = t.tensor(new float[q.length]), dkRef = t.tensor(new float[k.length]), dvRef = t.tensor(new float[v.length]);
        t.cpu.attentionBackward(dqRef, dkRef, dvRef, dOut, qt, kt, vt, probs, b, heads, lq, lk, d, scale);
        Tensor dq = t.tensor(new float[q.length]), dk = t.tensor(new float[k.length]), dv = t.tensor(new float[v.length]);
        t.cpu.attentionBackwardFromStats(dq, dk, dv, dOut, qt, kt, vt, out, stats, b, heads, lq, lk, d, scale);
        assertRelClose(name + " dq", toDouble(t.host(dqRef)), t.host(dq), BACKWARD_TOL);
        assertRelClose(name + " dk", toDouble(t.host(dkRef)), t.host(dk), BACKWARD_TOL);
        assertRelClose(name + " dv", toDouble(t.host(dvRef)), t.host(dv), BACKWARD_TOL);

        // a gradient not asked for is skipped, the others unchanged
        Tensor dkOnly = t.tensor(new float[k.length]);
        t.cpu.attentionBackwardFromStats(null, dkOnly, null, dOut, qt, kt, vt, out, stats, b, heads, lq, lk, d, scale);
        assertArrayEquals(t.host(dk), t.host(dkOnly));
    }

    /** the same bits on one thread as on several (each head is one task, its sums in a fixed order) */
    @Test
    void sameBitsOnAnyThreadCount() {
        List<List<float[]>> runs = new ArrayList<>();
        for (int threads : new int[] {1, 3}) {
            Parallel.withThreads(threads, () -> {
                OpCheck t = new OpCheck(99);
                int b = 2, heads = 3, lq = 150, lk = 140, d = 40;
                Tensor q = t.tensor(t.randn(b * lq * heads * d)), k = t.tensor(t.randn(b * lk * heads * d));
                Tensor v = t.tensor(t.randn(b * lk * heads * d)), out = t.tensor(new float[b * lq * heads * d]);
                Tensor stats = t.tensor(new float[b * heads * lq]);
                Tensor dq = t.tensor(new float[b * lq * heads * d]), dk = t.tensor(new float[b * lk * heads * d]);
                Tensor dv = t.tensor(new float[b * lk * heads * d]);
                t.cpu.attentionWithStats(out, stats, q, k, v, b, heads, lq, lk, d, 0.2f);
                t.cpu.attentionBackwardFromStats(dq, dk, dv, t.tensor(t.randn(b * lq * heads * d)), q, k, v, out, stats,
                        b, heads, lq, lk, d, 0.2f);
                runs.add(List.of(t.host(out), t.host(stats), t.host(dq), t.host(dk), t.host(dv)));
            });
        }
        for (int i = 0; i < runs.getFirst().size(); i++) assertArrayEquals(runs.get(0).get(i), runs.get(1).get(i));
    }
}
