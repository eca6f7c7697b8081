package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * conv2d forward against a float64 direct loop; both backwards against float64 finite differences of it on small
 * shapes, and against float64 direct loops of their sums (themselves checked against the finite differences) on
 * shapes big enough to be cut into column blocks, k-blocks and parallel tasks, where they must also give the same
 * bits on any thread count.
 */
class ConvOpsTest {

    /** out[n, k, oy, ox] = bias[k] + Σ_{c, r, s} in[n, c, oy·stride - pad + r, ox·stride - pad + s] · w[k, c, r, s] */
    static double[] naiveConv(double[] in, double[] w, double[] bias, Conv2dShape sh) {
        int oh = sh.outH(), ow = sh.outW();
        double[] out = new double[sh.n() * sh.k() * oh * ow];
        for (int n = 0; n < sh.n(); n++)
            for (int k = 0; k < sh.k(); k++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        double sum = bias == null ? 0 : bias[k];
                        for (int c = 0; c < sh.c(); c++)
                            for (int r = 0; r < sh.r(); r++)
                                for (int s = 0; s < sh.s(); s++) {
                                    int iy = oy * sh.stride() - sh.pad() + r, ix = ox * sh.stride() - sh.pad() + s;
                                    if (iy < 0 || iy >= sh.h() || ix < 0 || ix >= sh.w()) continue;
                                    sum += in[((n * sh.c() + c) * sh.h() + iy) * sh.w() + ix]
                                            * w[((k * sh.c() + c) * sh.r() + r) * sh.s() + s];
                                }
                        out[((n * sh.k() + k) * oh + oy) * ow + ox] = sum;
                    }
        return out;
    }

    /** dIn[n, c, iy, ix] = Σ over (k, oy, ox, r, s) with oy·stride - pad + r = iy, ox·stride - pad + s = ix of dOut · w */
    static double[] naiveBackwardData(double[] dOut, double[] w, Conv2dShape sh) {
        double[] dIn = new double[sh.n() * sh.c() * sh.h() * sh.w()];
        forEachTerm(sh, (outAt, inAt, wAt) -> dIn[inAt] += dOut[outAt] * w[wAt]);
        return dIn;
    }

    /** dWeight[k, c, r, s] = Σ over (n, oy, ox) of dOut[n, k, oy, ox] · in[n, c, oy·stride - pad + r, ox·stride - pad + s] */
    static double[] naiveBackwardWeight(double[] dOut, double[] in, Conv2dShape sh) {
        double[] dW = new double[sh.k() * sh.c() * sh.r() * sh.s()];
        forEachTerm(sh, (outAt, inAt, wAt) -> dW[wAt] += dOut[outAt] * in[inAt]);
        return dW;
    }

    interface Term {
        void accept(int outAt, int inAt, int wAt);
    }

    /** every (output, input, weight) index triple of the convolution's sum, skipping padding */
    static void forEachTerm(Conv2dShape sh, Term term) {
        int oh = sh.outH(), ow = sh.outW();
        for (int n = 0; n < sh.n(); n++)
            for (int k = 0; k < sh.k(); k++)
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                        for (int c = 0; c < sh.c(); c++)
                            for (int r = 0; r < sh.r(); r++)
                                for (int s = 0; s < sh.s(); s++) {
                                    int iy = oy * sh.stride() - sh.pad() + r, ix = ox * sh.stride() - sh.pad() + s;
                                    if (iy < 0 || iy >= sh.h() || ix < 0 || ix >= sh.w()) continue;
                                    term.accept(((n * sh.k() + k) * oh + oy) * ow + ox,
                                            ((n * sh.c() + c) * sh.h() + iy) * sh.w() + ix,
                                            ((k * sh.c() + c) * sh.r() + r) * sh.s() + s);
                                }
    }

    @ParameterizedTest(name = "n={0} c={1} {2}x{3} k={4} kernel {5}x{6} stride {7} pad {8}")
    @CsvSource({
            "2, 7, 13, 11, 5, 3, 3, 1, 1",  // same padding (shifted-plane packing), rows not a multiple of 4
            "1, 3, 5, 6, 2, 3, 3, 1, 0",    // unpadded: output narrower than the input (packing by output rows)
            "1, 2, 3, 4, 3, 3, 3, 1, 2",    // pad 2 with a 3×3 kernel: output wider than the input
            "1, 2, 6, 7, 3, 5, 5, 1, 2",    // 5×5 same padding: two wrapped columns on each side
            "1, 3, 5, 4, 2, 1, 1, 1, 1",    // 1×1 padded: backward data by col2im
            "2, 3, 9, 8, 4, 3, 3, 3, 1",    // stride 3
            "2, 3, 7, 9, 5, 3, 3, 1, 1",
            "2, 5, 7, 9, 3, 3, 3, 2, 1",
            "1, 3, 7, 9, 4, 1, 1, 1, 0",   // pointwise: the direct GEMM path
            "2, 3, 7, 9, 4, 1, 1, 2, 1",   // 1×1 with stride and padding
            "2, 5, 7, 9, 3, 1, 1, 2, 0",   // 1×1 with stride: the im2col path
            "1, 3, 6, 5, 2, 3, 3, 2, 0",
            "1, 2, 5, 7, 3, 2, 3, 1, 2",   // non-square kernel, pad larger than 1
    })
    void forwardAndBackwardMatchFloat64(int n, int c, int h, int w, int k, int r, int s, int stride, int pad) {
        OpCheck t = new OpCheck(11L * n + 7L * c + h + 3L * r + stride);
        Conv2dShape sh = new Conv2dShape(n, c, h, w, k, r, s, stride, pad);
        int outSize = n * k * sh.outH() * sh.outW();
        float[] x = t.randn(n * c * h * w), wt = t.randn(k * c * r * s, 0.5), b = t.randn(k);

        Tensor out = t.tensor(new float[outSize]);
        t.cpu.conv2d(out, t.tensor(x), t.tensor(wt), t.tensor(b), sh);
        double[][] inputs = {toDouble(x), toDouble(wt), toDouble(b)};
        Goldens.assertRelClose("conv2d", naiveConv(inputs[0], inputs[1], inputs[2], sh), t.host(out), FORWARD_TOL);

        Tensor noBias = t.tensor(new float[outSize]);
        t.cpu.conv2d(noBias, t.tensor(x), t.tensor(wt), null, sh);
        Goldens.assertRelClose("conv2d without bias", naiveConv(inputs[0], inputs[1], null, sh), t.host(noBias), FORWARD_TOL);

        double[] dOut = toDouble(t.randn(outSize));
        Tensor dy = t.tensor(toFloat(dOut));
        float[] dxBefore = t.randn(x.length), dwBefore = t.randn(wt.length), dbBefore = t.randn(k);
        Tensor dx = t.tensor(dxBefore.clone()), dw = t.tensor(dwBefore.clone()), db = t.tensor(dbBefore.clone());
        t.cpu.conv2dBackwardData(dx, dy, t.tensor(wt), sh);
        t.cpu.conv2dBackwardWeight(dw, db, dy, t.tensor(x), sh);

        java.util.function.Function<double[][], double[]> f = in -> naiveConv(in[0], in[1], in[2], sh);
        assertAccumulated("conv2d dIn", t.host(dx), dxBefore, finiteDiff(f, inputs, 0, dOut), BACKWARD_TOL);
        assertAccumulated("conv2d dWeight", t.host(dw), dwBefore, finiteDiff(f, inputs, 1, dOut), BACKWARD_TOL);
        assertAccumulated("conv2d dBias", t.host(db), dbBefore, finiteDiff(f, inputs, 2, dOut), BACKWARD_TOL);

        // the direct loops the blocked shapes below are checked against
        Goldens.assertRelClose("naive dIn", finiteDiff(f, inputs, 0, dOut), toFloat(naiveBackwardData(dOut, inputs[1], sh)),
                BACKWARD_TOL);
        Goldens.assertRelClose("naive dWeight", finiteDiff(f, inputs, 1, dOut),
                toFloat(naiveBackwardWeight(dOut, inputs[0], sh)), BACKWARD_TOL);
    }

    @ParameterizedTest(name = "n={0} c={1} {2}x{3} k={4} kernel {5}x{6} stride {7} pad {8}")
    @CsvSource({
            "1, 64, 24, 24, 16, 3, 3, 1, 1",  // 2 column blocks, 2 k-blocks forward and in the weight gradient
            "2, 32, 16, 16, 38, 3, 3, 1, 1",  // batch 2, 38 rows: the last task ends in a partial strip
            "3, 20, 15, 13, 24, 3, 3, 1, 1",  // a column block spanning samples, the next starting inside one
            "2, 32, 33, 31, 24, 3, 3, 2, 1",  // stride 2, odd sizes: gathered rows, backward data by col2im
            "1, 96, 8, 8, 64, 1, 1, 1, 0",    // pointwise
            "1, 64, 64, 64, 8, 3, 3, 1, 1",   // 8 column blocks; an input big enough to be transposed in parallel
            "1, 2, 3, 600, 3, 3, 3, 1, 1",    // rows wider than a column block: whole blocks in the top/bottom padding
    })
    void blockedAndSplitShapesMatchFloat64OnAnyThreadCount(int n, int c, int h, int w, int k, int r, int s,
                                                            int stride, int pad) {
        Conv2dShape sh = new Conv2dShape(n, c, h, w, k, r, s, stride, pad);
        OpCheck t = new OpCheck(5L * c + k);
        int outSize = n * k * sh.outH() * sh.outW();
        float[] x = t.randn(n * c * h * w), wt = t.randn(k * c * r * s, 0.1), b = t.randn(k), dOut = t.randn(outSize);
        float[] dxBefore = t.randn(x.length), dwBefore = t.randn(wt.length);
        List<List<float[]>> runs = new ArrayList<>();
        for (int threads : new int[] {1, 2, 3}) {
            Parallel.withThreads(threads, () -> {
                Tensor out = t.tensor(new float[outSize]), dx = t.tensor(dxBefore.clone()), dw = t.tensor(dwBefore.clone());
                Tensor in = t.tensor(x), weight = t.tensor(wt), dy = t.tensor(dOut);
                t.cpu.conv2d(out, in, weight, t.tensor(b), sh);
                t.cpu.conv2dBackwardData(dx, dy, weight, sh);
                t.cpu.conv2dBackwardWeight(dw, null, dy, in, sh);
                runs.add(List.of(t.host(out), t.host(dx), t.host(dw)));
            });
        }
        List<float[]> first = runs.getFirst();
        Goldens.assertRelClose("conv2d", naiveConv(toDouble(x), toDouble(wt), toDouble(b), sh), first.get(0), FORWARD_TOL);
        assertAccumulated("conv2d dIn", first.get(1), dxBefore, naiveBackwardData(toDouble(dOut), toDouble(wt), sh),
                BACKWARD_TOL);
        assertAccumulated("conv2d dWeight", first.get(2), dwBefore, naiveBackwardWeight(toDouble(dOut), toDouble(x), sh),
                BACKWARD_TOL);
        for (List<float[]> run : runs.subList(1, runs.size())) {
            for (int i = 0; i < first.size(); i++) assertArrayEquals(first.get(i), run.get(i), "result " + i);
        }
    }
}
