package esdnative.backend.cpu;

import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static esdnative.backend.cpu.OpCheck.toDouble;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Adam and the timestep embedding: against float64 evaluations of their formulas, and against the
 * fixtures' torch outputs (one torch.optim.Adam step of the ESD run; unet.time_proj).
 */
class AdamAndEmbeddingTest {

    /** torch.optim.Adam's update in float64, for steps 1..steps with the given gradients */
    private static void naiveAdam(double[] p, double[][] grads, double lr, double b1, double b2, double eps, double wd) {
        double[] m = new double[p.length], v = new double[p.length];
        for (int step = 1; step <= grads.length; step++) {
            for (int i = 0; i < p.length; i++) {
                double g = grads[step - 1][i] + wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double denom = Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(b2, step)) + eps;
                p[i] -= lr / (1 - Math.pow(b1, step)) * m[i] / denom;
            }
        }
    }

    @Test
    void adamMatchesItsFloat64Formula() {
        OpCheck t = new OpCheck(8);
        int n = 50, steps = 4;
        float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
        float[] p = t.randn(n);
        double[][] grads = new double[steps][];
        Tensor pt = t.tensor(p.clone()), g = t.tensor(new float[n]), m = t.tensor(new float[n]), v = t.tensor(new float[n]);
        for (int s = 0; s < steps; s++) {
            float[] gs = t.randn(n);
            grads[s] = toDouble(gs);
            t.cpu.copyFromHost(g, gs, 0);
            t.cpu.adamStep(pt, g, m, v, n, s + 1, lr, b1, b2, eps, wd);
        }
        double[] expected = toDouble(p);
        naiveAdam(expected, grads, 0.01, 0.9, 0.999, 1e-8, 0.01);
        // compare the change of the parameters (a few lr in size), not the parameters themselves
        double[] change = new double[n];
        float[] actualChange = new float[n];
        float[] after = t.host(pt);
        for (int i = 0; i < n; i++) {
            change[i] = expected[i] - p[i];
            actualChange[i] = (float) ((double) after[i] - p[i]);
        }
        // float32 parameters: each update is rounded to the parameter's ulp (|p| ≤ 4: ≤ 2.4e-7), relative to
        // a change of ~4·lr = 0.04 that is ≤ 6e-6 per step
        Goldens.assertRelClose("adam parameter change", change, actualChange, 3e-5);
    }

    @Test
    void adamMatchesTorchOnTheEsdStep() throws IOException {
        String[] names = {
                "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight",
                "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.weight",
                "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.bias",
        };
        OpCheck t = new OpCheck(9);
        int differing = 0, total = 0;
        for (String name : names) {
            float[] before = NpyFile.readFloats(Fixtures.golden("esd_param_before__" + name + ".npy"));
            float[] grad = NpyFile.readFloats(Fixtures.golden("esd_grad__" + name + ".npy"));
            float[] after = NpyFile.readFloats(Fixtures.golden("esd_param_after__" + name + ".npy"));
            int n = before.length;
            Tensor p = t.tensor(before);
            t.cpu.adamStep(p, t.tensor(grad), t.tensor(new float[n]), t.tensor(new float[n]), n, 1,
                    1e-5f, 0.9f, 0.999f, 1e-8f, 0f);
            float[] mine = t.host(p);
            // manifest: suggested tolerance ~1e-7 absolute on ESD-updated parameters
            Goldens.assertClose(name + " after one Adam step, vs torch", after, mine, 1e-7);
            for (int i = 0; i < n; i++) if (mine[i] != after[i]) differing++;
            total += n;
        }
        System.out.printf("adam vs torch ESD step: %d of %d parameters differ in any bit%n", differing, total);
    }

    @Test
    void timestepEmbeddingMatchesItsFormula() {
        OpCheck t = new OpCheck(10);
        float[] timesteps = {0f, 1f, 37f, 500f, 999f};
        for (int dim : new int[]{8, 9, 32}) {
            for (boolean flip : new boolean[]{false, true}) {
                for (float shift : new float[]{0f, 1f}) {
                    Tensor out = t.tensor(new float[timesteps.length * dim]);
                    t.cpu.timestepEmbedding(out, timesteps, dim, flip, shift, 10000f);
                    float[] actual = t.host(out);
                    int half = dim / 2;
                    for (int n = 0; n < timesteps.length; n++) {
                        for (int i = 0; i < half; i++) {
                            double exponent = -Math.log(10000) * i / (half - shift);
                            double arg = timesteps[n] * Math.exp(exponent);
                            double sin = Math.sin(arg), cos = Math.cos(arg);
                            double gotSin = actual[n * dim + (flip ? half : 0) + i];
                            double gotCos = actual[n * dim + (flip ? 0 : half) + i];
                            // torch rounds the exponent to float32 (relative error 2^-24, i.e. an absolute
                            // |exponent|·2^-24 that exp turns into a relative error of the frequency), then the
                            // frequency and the argument (2^-24 each): |Δarg| ≤ (|exponent| + 2)·2^-24·|arg|,
                            // doubled for safety, plus the final float32 rounding of sin/cos
                            double tol = (Math.abs(exponent) + 2) * 0x1p-23 * Math.abs(arg) + 1.2e-7;
                            assertTrue(Math.abs(gotSin - sin) <= tol, "sin t=" + timesteps[n] + " i=" + i + " dim=" + dim);
                            assertTrue(Math.abs(gotCos - cos) <= tol, "cos t=" + timesteps[n] + " i=" + i + " dim=" + dim);
                        }
                        if (dim % 2 == 1) assertTrue(actual[n * dim + dim - 1] == 0f, "odd dim: zero padding");
                    }
                }
            }
        }
    }

    @Test
    void timestepEmbeddingMatchesTorch() throws IOException {
        float[] timesteps = NpyFile.readFloats(Fixtures.golden("unet_in_timesteps.npy"));
        float[] expected = NpyFile.readFloats(Fixtures.golden("unet_intermediate_time_proj.npy"));
        OpCheck t = new OpCheck(11);
        int dim = expected.length / timesteps.length;
        Tensor out = t.tensor(new float[expected.length]);
        // the tiny model's time_proj: flip_sin_to_cos=True, freq_shift=0 (manifest)
        t.cpu.timestepEmbedding(out, timesteps, dim, true, 0f, 10000f);
        // torch's float32 exp, sin and cos (SLEEF, 1-ulp) are not correctly rounded, Java's (in double, then
        // rounded) are: a frequency may differ in its last bit, which moves the argument t·freq by one ulp of
        // the argument (6.1e-5 at t≈999), and sin/cos may differ by one ulp of the result. Measured: 12 of 64
        // values differ, by at most 1.9e-6 (one argument ulp at t=981, arg≈17.4).
        float[] actual = t.host(out);
        double maxErr = 0;
        int half = dim / 2;
        for (int n = 0; n < timesteps.length; n++) {
            for (int j = 0; j < dim; j++) {
                int at = n * dim + j;
                double arg = timesteps[n] * Math.exp(-Math.log(10000) * (j % half) / half);
                double tol = 1.5 * Math.ulp((float) arg) + 2 * Math.ulp(expected[at]);
                double err = Math.abs(actual[at] - expected[at]);
                assertTrue(err <= tol, "embedding[" + n + ", " + j + "]: " + actual[at] + " vs torch " + expected[at]);
                maxErr = Math.max(maxErr, err);
            }
        }
        System.out.printf("timestep embedding vs torch: max abs error %.2e%n", maxErr);
    }
}
