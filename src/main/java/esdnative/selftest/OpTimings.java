package esdnative.selftest;

import esdnative.backend.Backend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Times the backend ops at the shapes of one ESD training step on SD 1.x (batch 2, 64×64 latents, 320 channels
 * at the first level, 8 heads), or at a tiny scale for a quick check, and reports each op's rate: TFLOP/s for
 * GEMM work, GB/s (bytes it must move at least) for the rest, to set against the hardware's limits.
 */
public final class OpTimings {
    /** One op at one shape: its work (flops or bytes, whichever bounds it) and how to set it up on a backend. */
    public record Case(String name, double flops, double bytes, Function<Backend, Runnable> setup) {}

    /** A measured case. */
    public record Timing(String name, double millis, String rate) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%-44s %10.3f ms  %s", name, millis, rate);
        }
    }

    private OpTimings() {}

    /** The cases at latent size {@code latent} (64 for SD 1.x at 512 px). */
    public static List<Case> cases(int latent) {
        int n = 2, c = 320, hw = latent * latent, heads = 8, d = c / heads, rows = n * hw;
        long act = (long) n * c * hw;
        List<Case> out = new ArrayList<>();
        out.add(gemm("gemm " + rows + "x" + c + "x" + c + " (attention projection)", rows, c, c));
        out.add(gemm("gemm " + rows + "x" + 8 * c + "x" + c + " (GEGLU projection)", rows, 8 * c, c));
        Conv2dShape conv = new Conv2dShape(n, c, latent, latent, c, 3, 3, 1, 1);
        out.add(new Case("conv2d 3x3 " + c + "->" + c + " " + latent + "x" + latent, conv.flops(), 0, b -> {
            Tensor x = b.zeros(n, c, latent, latent), w = b.zeros(c, c, 3, 3), bias = b.zeros(c), y = b.zeros(n, c, latent, latent);
            return () -> b.conv2d(y, x, w, bias, conv);
        }));
        out.add(new Case("conv2dBackwardData 3x3", conv.flops(), 0, b -> {
            Tensor dx = b.zeros(n, c, latent, latent), w = b.zeros(c, c, 3, 3), dy = b.zeros(n, c, latent, latent);
            return () -> b.conv2dBackwardData(dx, dy, w, conv);
        }));
        out.add(new Case("conv2dBackwardWeight 3x3 (+bias)", conv.flops(), 0, b -> {
            Tensor x = b.zeros(n, c, latent, latent), dw = b.zeros(c, c, 3, 3), db = b.zeros(c), dy = b.zeros(n, c, latent, latent);
            return () -> b.conv2dBackwardWeight(dw, db, dy, x, conv);
        }));
        out.add(new Case("groupNorm 32 groups", 0, 2.0 * act * 4, b -> {
            Tensor x = b.zeros(n, c, hw), y = b.zeros(n, c, hw), g = b.zeros(c), be = b.zeros(c);
            Tensor mean = b.zeros(n * 32), rstd = b.zeros(n * 32);
            return () -> b.groupNorm(y, mean, rstd, x, g, be, n, c, hw, 32, 1e-5f);
        }));
        out.add(new Case("groupNormBackward", 0, 4.0 * act * 4, b -> {
            Tensor x = b.zeros(n, c, hw), dy = b.zeros(n, c, hw), dx = b.zeros(n, c, hw), g = b.zeros(c);
            Tensor dg = b.zeros(c), dbeta = b.zeros(c), mean = b.zeros(n * 32), rstd = b.zeros(n * 32);
            return () -> b.groupNormBackward(dx, dg, dbeta, dy, x, mean, rstd, g, n, c, hw, 32);
        }));
        out.add(new Case("layerNorm " + rows + "x" + c, 0, 2.0 * act * 4, b -> {
            Tensor x = b.zeros(rows, c), y = b.zeros(rows, c), g = b.zeros(c), be = b.zeros(c);
            Tensor mean = b.zeros(rows), rstd = b.zeros(rows);
            return () -> b.layerNorm(y, mean, rstd, x, g, be, rows, c, 1e-5f);
        }));
        long scores = (long) n * heads * hw * hw;
        out.add(new Case("softmax " + n * heads * hw + "x" + hw, 0, 2.0 * scores * 4, b -> {
            Tensor x = b.zeros(n * heads * hw, hw);
            return () -> b.softmax(x, x, n * heads * hw, hw);
        }));
        float scale = (float) (1 / Math.sqrt(d));
        out.add(new Case("attention self " + hw + " tokens, " + heads + " heads", 4.0 * scores * d, 0, b -> {
            Tensor q = b.zeros(n, hw, c), k = b.zeros(n, hw, c), v = b.zeros(n, hw, c), o = b.zeros(n, hw, c);
            Tensor p = b.zeros(b.attentionSavedShape(n, heads, hw, hw));
            return () -> b.attention(o, p, q, k, v, n, heads, hw, hw, d, scale, false);
        }));
        out.add(new Case("attentionBackward self", 8.0 * scores * d, 0, b -> {
            Tensor q = b.zeros(n, hw, c), k = b.zeros(n, hw, c), v = b.zeros(n, hw, c), dy = b.zeros(n, hw, c);
            Tensor dq = b.zeros(n, hw, c), dk = b.zeros(n, hw, c), dv = b.zeros(n, hw, c);
            Tensor p = b.zeros(b.attentionSavedShape(n, heads, hw, hw));
            return () -> b.attentionBackward(dq, dk, dv, dy, q, k, v, p, n, heads, hw, hw, d, scale);
        }));
        out.add(new Case("attention cross " + hw + "x77 tokens", 4.0 * n * heads * hw * 77 * d, 0, b -> {
            Tensor q = b.zeros(n, hw, c), k = b.zeros(n, 77, c), v = b.zeros(n, 77, c), o = b.zeros(n, hw, c);
            Tensor p = b.zeros(b.attentionSavedShape(n, heads, hw, 77));
            return () -> b.attention(o, p, q, k, v, n, heads, hw, 77, d, scale, false);
        }));
        out.add(new Case("silu " + act, 0, 2.0 * act * 4, b -> {
            Tensor x = b.zeros((int) act), y = b.zeros((int) act);
            return () -> b.silu(y, x, act);
        }));
        out.add(new Case("geglu " + rows + "x" + 4 * c, 0, 3.0 * rows * 4 * c * 4, b -> {
            Tensor x = b.zeros(rows, 8 * c), y = b.zeros(rows, 4 * c);
            return () -> b.geglu(y, x, rows, 4 * c);
        }));
        out.add(new Case("concatChannels (skip connection)", 0, 2.0 * 2 * act * 4, b -> {
            Tensor a = b.zeros(n, c, hw), bb = b.zeros(n, c, hw), y = b.zeros(n, 2 * c, hw);
            return () -> b.concatChannels(y, a, bb, n, c, c, hw);
        }));
        int params = 4096 * hw;                  // ~16.8M at SD 1.x: about ESD-x's trained parameters x3
        out.add(new Case("adamStep " + params, 0, 7.0 * params * 4, b -> {
            Tensor p = b.zeros(params), g = b.zeros(params), m = b.zeros(params), v = b.zeros(params);
            return () -> b.adamStep(p, g, m, v, params, 1, 1e-5f, 0.9f, 0.999f, 1e-8f, 0f);
        }));
        return out;
    }

    private static Case gemm(String name, int m, int n, int k) {
        return new Case(name, 2.0 * m * n * k, 0, b -> {
            Tensor a = b.zeros(m, k), w = b.zeros(k, n), y = b.zeros(m, n);
            return () -> b.gemm(false, false, m, n, k, 1f, a, k, 0, w, n, 0, 0f, y, n, 0, 1);
        });
    }

    /** Runs a case once to warm up, then repeatedly for about {@code seconds}, and reports the mean time. */
    public static Timing time(Case c, Backend backend, double seconds) {
        Runnable op = c.setup().apply(backend);
        op.run();
        sync(backend);
        int iterations = 0;
        long start = System.nanoTime(), elapsed;
        do {
            op.run();
            iterations++;
            sync(backend);
            elapsed = System.nanoTime() - start;
        } while (elapsed < seconds * 1e9 && iterations < 1000);
        double millis = elapsed / 1e6 / iterations;
        String rate = c.flops() > 0 ? String.format(Locale.ROOT, "%9.3f TFLOP/s", c.flops() / millis / 1e9)
                : String.format(Locale.ROOT, "%9.1f GB/s", c.bytes() / millis / 1e6);
        return new Timing(c.name(), millis, rate);
    }

    private static void sync(Backend backend) {
        if (backend instanceof CudaBackend cuda) cuda.synchronize();
    }
}
