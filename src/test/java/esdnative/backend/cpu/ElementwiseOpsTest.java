package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.util.function.Function;

import static esdnative.backend.cpu.OpCheck.BACKWARD_TOL;
import static esdnative.backend.cpu.OpCheck.FORWARD_TOL;
import static esdnative.backend.cpu.OpCheck.assertAccumulated;
import static esdnative.backend.cpu.OpCheck.finiteDiff;
import static esdnative.backend.cpu.OpCheck.toDouble;
import static esdnative.backend.cpu.OpCheck.toFloat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Memory, shape, arithmetic ops and the MSE loss against float64 loops; backwards against finite differences. */
class ElementwiseOpsTest {

    @Test
    void memoryOps() {
        OpCheck t = new OpCheck(1);
        Tensor z = t.cpu.zeros(2, 3);
        assertArrayEquals(new float[6], t.host(z));
        float[] data = t.randn(6);
        Tensor a = t.cpu.fromHost(data, 3, 2);
        float first = data[0];
        data[0] = 99f;  // fromHost copies
        assertEquals(6, a.size());
        float[] host = t.host(a);
        assertEquals(first, host[0]);
        t.cpu.copyFromHost(z, host, 0);
        assertArrayEquals(host, t.host(z));
        float[] longer = t.randn(10);
        t.cpu.copyFromHost(z, longer, 4);
        assertArrayEquals(java.util.Arrays.copyOfRange(longer, 4, 10), t.host(z));
        Tensor view = t.tensor(t.randn(4));
        t.cpu.fill(view, 2.5f);
        assertArrayEquals(new float[]{2.5f, 2.5f, 2.5f, 2.5f}, t.host(view));
        t.cpu.copy(view, t.tensor(host).view(1, 4));
        assertArrayEquals(java.util.Arrays.copyOfRange(host, 1, 5), t.host(view));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.fromHost(new float[5], 2, 3));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.copy(view, z));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.copyFromHost(z, longer, 5));
    }

    @Test
    void tooSmallTensorsAreRefused() {
        OpCheck t = new OpCheck(7);
        Tensor small = t.tensor(new float[5]), enough = t.tensor(new float[6]);
        assertThrows(IllegalArgumentException.class, () -> t.cpu.add(small, enough, enough, 6));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.silu(enough, small, 6));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.gemm(false, false, 2, 3, 1, 1f, enough, 1, 0,
                enough, 3, 0, 0f, small, 3, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> t.cpu.conv2d(enough, small, enough, null,
                new esdnative.tensor.Conv2dShape(1, 1, 2, 3, 1, 1, 1, 1, 0)));
    }

    @Test
    void arithmeticWithAliasing() {
        OpCheck t = new OpCheck(2);
        int n = 37;
        float[] a = t.randn(n), b = t.randn(n);
        double[] sum = new double[n], axpy = new double[n], scaled = new double[n], lin = new double[n];
        for (int i = 0; i < n; i++) {
            sum[i] = (double) a[i] + b[i];
            axpy[i] = a[i] + 0.3f * (double) b[i];
            scaled[i] = -1.5 * a[i];
            lin[i] = 0.7f * (double) a[i] - 1.2f * (double) b[i];
        }
        Tensor out = t.tensor(new float[n]);
        t.cpu.add(out, t.tensor(a), t.tensor(b), n);
        Goldens.assertRelClose("add", sum, t.host(out), FORWARD_TOL);
        Tensor aliased = t.tensor(a);
        t.cpu.add(aliased, aliased, t.tensor(b), n);
        Goldens.assertRelClose("add into a", sum, t.host(aliased), FORWARD_TOL);

        Tensor y = t.tensor(a);
        t.cpu.axpy(y, 0.3f, t.tensor(b), n);
        Goldens.assertRelClose("axpy", axpy, t.host(y), FORWARD_TOL);

        Tensor s = t.tensor(a);
        t.cpu.scale(s, s, -1.5f, n);
        Goldens.assertRelClose("scale in place", scaled, t.host(s), FORWARD_TOL);

        Tensor l = t.tensor(b);
        t.cpu.linearCombination(l, 0.7f, t.tensor(a), -1.2f, l, n);
        Goldens.assertRelClose("linearCombination into b", lin, t.host(l), FORWARD_TOL);
    }

    @Test
    void channelBiasAndItsGradient() {
        OpCheck t = new OpCheck(3);
        int n = 2, c = 3, hw = 10;
        float[] y = t.randn(n * c * hw), bias = t.randn(n * c);
        Tensor yt = t.tensor(y.clone());
        t.cpu.addChannelBias(yt, t.tensor(bias), n, c, hw);
        double[][] in = {toDouble(y), toDouble(bias)};
        Function<double[][], double[]> f = a -> {
            double[] out = a[0].clone();
            for (int i = 0; i < out.length; i++) out[i] += a[1][i / hw];
            return out;
        };
        Goldens.assertRelClose("addChannelBias", f.apply(in), t.host(yt), FORWARD_TOL);
        double[] dOut = toDouble(t.randn(y.length));
        float[] before = t.randn(n * c);
        Tensor db = t.tensor(before.clone());
        t.cpu.sumChannelBias(db, t.tensor(toFloat(dOut)), n, c, hw);
        assertAccumulated("sumChannelBias", t.host(db), before, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
    }

    @Test
    void upsampleNearest2x() {
        OpCheck t = new OpCheck(4);
        int nc = 3, h = 3, w = 5;
        float[] x = t.randn(nc * h * w);
        Tensor out = t.tensor(new float[nc * 4 * h * w]);
        t.cpu.upsampleNearest2x(out, t.tensor(x), nc, h, w);
        double[][] in = {toDouble(x)};
        Function<double[][], double[]> f = a -> {
            double[] o = new double[nc * 4 * h * w];
            for (int p = 0; p < nc; p++)
                for (int yy = 0; yy < 2 * h; yy++)
                    for (int xx = 0; xx < 2 * w; xx++) o[(p * 2 * h + yy) * 2 * w + xx] = a[0][(p * h + yy / 2) * w + xx / 2];
            return o;
        };
        Goldens.assertRelClose("upsampleNearest2x", f.apply(in), t.host(out), 0);
        double[] dOut = toDouble(t.randn(nc * 4 * h * w));
        float[] before = t.randn(x.length);
        Tensor dx = t.tensor(before.clone());
        t.cpu.upsampleNearest2xBackward(dx, t.tensor(toFloat(dOut)), nc, h, w);
        assertAccumulated("upsampleNearest2x backward", t.host(dx), before, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
    }

    @Test
    void concatAndSplitChannels() {
        OpCheck t = new OpCheck(5);
        int n = 2, ca = 3, cb = 2, hw = 4;
        float[] a = t.randn(n * ca * hw), b = t.randn(n * cb * hw);
        Tensor out = t.tensor(new float[n * (ca + cb) * hw]);
        t.cpu.concatChannels(out, t.tensor(a), t.tensor(b), n, ca, cb, hw);
        double[][] in = {toDouble(a), toDouble(b)};
        Function<double[][], double[]> f = x -> {
            double[] o = new double[n * (ca + cb) * hw];
            for (int i = 0; i < n; i++) {
                System.arraycopy(x[0], i * ca * hw, o, i * (ca + cb) * hw, ca * hw);
                System.arraycopy(x[1], i * cb * hw, o, i * (ca + cb) * hw + ca * hw, cb * hw);
            }
            return o;
        };
        Goldens.assertRelClose("concatChannels", f.apply(in), t.host(out), 0);
        double[] dOut = toDouble(t.randn(n * (ca + cb) * hw));
        float[] beforeA = t.randn(a.length), beforeB = t.randn(b.length);
        Tensor da = t.tensor(beforeA.clone()), db = t.tensor(beforeB.clone());
        t.cpu.splitChannels(da, db, t.tensor(toFloat(dOut)), n, ca, cb, hw);
        assertAccumulated("splitChannels dA", t.host(da), beforeA, finiteDiff(f, in, 0, dOut), BACKWARD_TOL);
        assertAccumulated("splitChannels dB", t.host(db), beforeB, finiteDiff(f, in, 1, dOut), BACKWARD_TOL);
        Tensor onlyB = t.tensor(beforeB.clone());
        t.cpu.splitChannels(null, onlyB, t.tensor(toFloat(dOut)), n, ca, cb, hw);
        assertArrayEquals(t.host(db), t.host(onlyB));
    }

    @Test
    void mseLossAndGradient() {
        OpCheck t = new OpCheck(6);
        int n = 40_000;  // more than two reduction ranges
        float[] pred = t.randn(n), target = t.randn(n);
        double[][] in = {toDouble(pred), toDouble(target)};
        Function<double[][], double[]> f = a -> {
            double s = 0;
            for (int i = 0; i < n; i++) s += (a[0][i] - a[1][i]) * (a[0][i] - a[1][i]);
            return new double[]{s / n};
        };
        float loss = t.cpu.mseLoss(t.tensor(pred), t.tensor(target), n);
        Goldens.assertRelClose("mseLoss", f.apply(in), new float[]{loss}, FORWARD_TOL);

        int small = 9;
        float[] p = t.randn(small), q = t.randn(small);
        double[][] smallIn = {toDouble(p), toDouble(q)};
        Function<double[][], double[]> g = a -> {
            double s = 0;
            for (int i = 0; i < small; i++) s += (a[0][i] - a[1][i]) * (a[0][i] - a[1][i]);
            return new double[]{s / small};
        };
        float[] before = t.randn(small);
        Tensor dp = t.tensor(before.clone());
        float scale = 0.5f;
        t.cpu.mseLossBackward(dp, t.tensor(p), t.tensor(q), small, scale);
        assertAccumulated("mseLoss backward", t.host(dp), before, finiteDiff(g, smallIn, 0, new double[]{scale}), BACKWARD_TOL);
    }
}
