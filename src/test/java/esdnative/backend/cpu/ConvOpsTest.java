package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.assertClose;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;

/** conv2d forward against a float64 direct loop; both backwards against float64 finite differences of it. */
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

    @ParameterizedTest(name = "n={0} c={1} {2}x{3} k={4} kernel {5}x{6} stride {7} pad {8}")
    @CsvSource({
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
        assertClose("conv2d", t.host(out), naiveConv(inputs[0], inputs[1], inputs[2], sh), FORWARD_TOL);

        Tensor noBias = t.tensor(new float[outSize]);
        t.cpu.conv2d(noBias, t.tensor(x), t.tensor(wt), null, sh);
        assertClose("conv2d without bias", t.host(noBias), naiveConv(inputs[0], inputs[1], null, sh), FORWARD_TOL);

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
    }
}
