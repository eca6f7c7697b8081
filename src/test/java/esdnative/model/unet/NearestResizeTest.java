package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The resize diffusers' UNet does at sizes that are not multiples of 2^(levels − 1): F.interpolate(mode="nearest",
 * size=skip size) from the halved-rounding-up side back to the skip's side.
 */
class NearestResizeTest {
    private final Backend be = new CpuBackend();
    private final Random random = new Random(3);

    /**
     * PyTorch's float32 floor(o · in/out) against the exact rational floor(o · in / out), in integers: at the UNet's
     * sizes (in = ⌈out/2⌉, so in and out are coprime or out = 2 in) o · in / out is never a whole number for
     * o > 0, so float32 rounding cannot move the floor and the two must agree.
     */
    @Test
    void sourceIndicesAreTheExactNearestAtTheUNetsSizes() {
        for (int out = 1; out <= 520; out++) {
            int in = (out + 1) / 2;
            int[] index = NearestResize.sourceIndices(in, out);
            for (int o = 0; o < out; o++) assertEquals((int) ((long) o * in / out), index[o], in + " → " + out + " at " + o);
        }
        // the identity and exact doubling, which PyTorch special-cases, come out of the same formula
        assertArrayEquals(new int[] {0, 1, 2}, NearestResize.sourceIndices(3, 3));
        assertArrayEquals(new int[] {0, 0, 1, 1, 2, 2}, NearestResize.sourceIndices(3, 6));
    }

    @Test
    void forwardGathersAndBackwardIsItsAdjoint() {
        int n = 2, c = 3, h = 4, w = 3, oh = 7, ow = 5;
        Tensor x = random(n, c, h, w);
        Tensor y = be.zeros(n, c, oh, ow);
        NearestResize.forward(be, y, x);
        float[] xs = be.toHost(x), ys = be.toHost(y);
        for (int p = 0; p < n * c; p++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    int si = (int) ((long) i * h / oh), sj = (int) ((long) j * w / ow);
                    assertEquals(xs[(p * h + si) * w + sj], ys[(p * oh + i) * ow + j], 0f);
                }
            }
        }
        // ⟨resize(x), g⟩ = ⟨x, resizeᵀ(g)⟩; backward accumulates into what dIn held
        Tensor g = random(n, c, oh, ow);
        Tensor dx = random(n, c, h, w);
        float[] before = be.toHost(dx);
        NearestResize.backward(be, dx, g);
        float[] gs = be.toHost(g), dxs = be.toHost(dx);
        double lhs = 0, rhs = 0;
        for (int i = 0; i < ys.length; i++) lhs += (double) ys[i] * gs[i];
        for (int i = 0; i < xs.length; i++) rhs += (double) xs[i] * (dxs[i] - before[i]);
        assertEquals(lhs, rhs, 1e-5 * (Math.abs(lhs) + 1));
    }

    /** At exactly twice the size the resize is the 2× upsampling op, bit for bit, forward and backward. */
    @Test
    void doublingIsTheTwoTimesOp() {
        int n = 1, c = 2, h = 3, w = 5;
        Tensor x = random(n, c, h, w);
        Tensor a = be.zeros(n, c, 2 * h, 2 * w), b = be.zeros(n, c, 2 * h, 2 * w);
        NearestResize.forward(be, a, x);
        be.upsampleNearest2x(b, x, n * c, h, w);
        assertArrayEquals(be.toHost(b), be.toHost(a), 0f);
        Tensor g = random(n, c, 2 * h, 2 * w);
        Tensor da = be.zeros(n, c, h, w), db = be.zeros(n, c, h, w);
        NearestResize.backward(be, da, g);
        be.upsampleNearest2xBackward(db, g, n * c, h, w);
        assertArrayEquals(be.toHost(db), be.toHost(da), 1e-6f);
    }

    private Tensor random(int... shape) {
        Tensor t = be.zeros(shape);
        float[] v = new float[(int) t.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian();
        be.copyFromHost(t, v, 0);
        return t;
    }
}
