package esdnative.sched;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.util.UserError;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.io.Npy;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DdimSchedulerTest {

    private static DdimScheduler fixtureScheduler() {
        return new DdimScheduler(DdimConfig.read(Fixtures.path("tiny-sd-a/scheduler/scheduler_config.json")));
    }

    /** The fixture's config is SD1.4's; absent keys would take DDIMScheduler's defaults. */
    @Test
    void readsTheFixtureConfig(@TempDir Path dir) throws IOException {
        DdimConfig c = DdimConfig.read(Fixtures.path("tiny-sd-a/scheduler/scheduler_config.json"));
        assertEquals(DdimConfig.stableDiffusion1(), new DdimConfig(c.numTrainTimesteps(), c.betaStart(), c.betaEnd(),
                c.betaSchedule(), null, c.clipSample(), c.clipSampleRange(), c.setAlphaToOne(), c.stepsOffset(),
                c.predictionType(), c.timestepSpacing()));
        assertEquals(null, c.trainedBetas());
        Path empty = dir.resolve("scheduler_config.json");
        Files.writeString(empty, "{}");
        DdimConfig defaults = DdimConfig.read(empty);
        assertEquals("linear", defaults.betaSchedule());
        assertTrue(defaults.clipSample() && defaults.setAlphaToOne());
        assertEquals(0, defaults.stepsOffset());
    }

    /** Bit for bit: betas, 1 − β and the double-accumulated cumprod reproduce torch's float32 values exactly. */
    @Test
    void alphasCumprodMatchesDiffusers() {
        float[] golden = Npy.read(Fixtures.golden("ddim_alphas_cumprod.npy")).floats();
        assertArrayEquals(golden, fixtureScheduler().alphasCumprod());
    }

    @Test
    void timestepsMatchDiffusers() {
        DdimScheduler s = fixtureScheduler();
        for (int n : new int[] {10, 50}) {
            s.setTimesteps(n);
            long[] golden = Npy.read(Fixtures.golden("ddim_timesteps_" + n + ".npy")).longs();
            assertArrayEquals(golden, Arrays.stream(s.timesteps()).asLongStream().toArray());
        }
        assertThrows(UserError.class, () -> s.setTimesteps(1001));
    }

    /** diffusers' prev_sample and pred_original_sample at t = 901, 501 and 1 (the last uses final_alpha_cumprod). */
    @Test
    void stepReproducesDiffusers() {
        float[] model = Npy.read(Fixtures.golden("ddim_step_in_model_output.npy")).floats();
        float[] sample = Npy.read(Fixtures.golden("ddim_step_in_sample.npy")).floats();
        DdimScheduler s = fixtureScheduler();
        s.setTimesteps(10);
        try (Backend cpu = new CpuBackend()) {
            Tensor m = cpu.fromHost(model, 1, 4, 16, 16), x = cpu.fromHost(sample, 1, 4, 16, 16);
            Tensor prev = cpu.zeros(1, 4, 16, 16), x0 = cpu.zeros(1, 4, 16, 16);
            for (int t : new int[] {901, 501, 1}) {
                s.step(cpu, prev, x0, m, t, x, 0f, null);
                Goldens.assertClose("ddim_step_t" + t + "_pred_original_sample", cpu.toHost(x0));
                Goldens.assertClose("ddim_step_t" + t + "_prev_sample", cpu.toHost(prev));
                // in place: prevSample aliasing sample gives the same values
                Tensor inPlace = cpu.fromHost(sample, 1, 4, 16, 16);
                s.step(cpu, inPlace, x0, m, t, inPlace, 0f, null);
                assertArrayEquals(cpu.toHost(prev), cpu.toHost(inPlace));
            }
        }
    }

    /** eta > 0, clip_sample and add_noise against the DDIM formulas evaluated here independently in float64. */
    @Test
    void etaClipAndAddNoiseFollowTheFormulas() {
        DdimConfig clipped = new DdimConfig(1000, 0.00085, 0.012, "scaled_linear", null, true, 1.0, false, 1,
                "epsilon", "leading");
        DdimScheduler s = new DdimScheduler(clipped);
        s.setTimesteps(50);
        float[] abar = s.alphasCumprod();
        float[] sample = {0.3f, -2.5f, 1.7f, 0.05f}, model = {1.1f, -0.4f, -0.9f, 2.2f}, noise = {0.5f, -1f, 0.25f, 2f};
        try (Backend cpu = new CpuBackend()) {
            Tensor x = cpu.fromHost(sample, 4), m = cpu.fromHost(model, 4), z = cpu.fromHost(noise, 4);
            Tensor prev = cpu.zeros(4), x0 = cpu.zeros(4), noisy = cpu.zeros(4);
            for (int t : new int[] {981, 501, 21}) {
                double a = abar[t], ap = abar[t - 20];
                for (float eta : new float[] {0f, 0.5f, 1f}) {
                    double sigma = eta * Math.sqrt((1 - ap) / (1 - a) * (1 - a / ap));
                    s.step(cpu, prev, x0, m, t, x, eta, z);
                    float[] gotPrev = cpu.toHost(prev), gotX0 = cpu.toHost(x0);
                    for (int i = 0; i < 4; i++) {
                        double predX0 = (sample[i] - Math.sqrt(1 - a) * model[i]) / Math.sqrt(a);
                        double clippedX0 = Math.max(-1, Math.min(1, predX0));
                        double want = Math.sqrt(ap) * clippedX0 + Math.sqrt(1 - ap - sigma * sigma) * model[i]
                                + sigma * noise[i];
                        assertEquals(clippedX0, gotX0[i], 1e-5, "x0 t=" + t);
                        assertEquals(want, gotPrev[i], 1e-5, "prev t=" + t + " eta=" + eta);
                    }
                }
                s.addNoise(cpu, noisy, x, z, t);
                float[] got = cpu.toHost(noisy);
                for (int i = 0; i < 4; i++) {
                    assertEquals(Math.sqrt(a) * sample[i] + Math.sqrt(1 - a) * noise[i], got[i], 1e-6, "add_noise t=" + t);
                }
            }
        }
    }

    /** With v = √ᾱ·ε − √(1−ᾱ)·x0, v-prediction recovers x0 and ε, so its step equals the epsilon step. */
    @Test
    void vPredictionRecoversX0AndEpsilon() {
        DdimConfig sd1 = DdimConfig.stableDiffusion1();
        DdimConfig v = new DdimConfig(1000, 0.00085, 0.012, "scaled_linear", null, false, 1.0, false, 1,
                "v_prediction", "leading");
        DdimScheduler eps = new DdimScheduler(sd1), vs = new DdimScheduler(v);
        eps.setTimesteps(10);
        vs.setTimesteps(10);
        double x0 = 0.7, e = -1.3;
        for (int t : new int[] {901, 501, 1}) {
            double a = eps.alphasCumprod()[t];
            double xt = Math.sqrt(a) * x0 + Math.sqrt(1 - a) * e;
            double vel = Math.sqrt(a) * e - Math.sqrt(1 - a) * x0;
            DdimScheduler.StepCoefficients ce = eps.coefficients(t, 0), cv = vs.coefficients(t, 0);
            assertEquals(x0, cv.x0FromSample() * xt + cv.x0FromModel() * vel, 1e-5);
            assertEquals(e, cv.epsFromSample() * xt + cv.epsFromModel() * vel, 1e-5);
            assertEquals(ce.prevFromX0(), cv.prevFromX0());
            assertEquals(ce.prevFromEps(), cv.prevFromEps());
        }
    }

    @Test
    void unsupportedConfigIsAUserError(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("scheduler_config.json");
        Files.writeString(file, "{\"beta_schedule\": \"squaredcos_cap_v2\"}");
        UserError e = assertThrows(UserError.class, () -> DdimConfig.read(file));
        assertTrue(e.getMessage().contains("squaredcos_cap_v2"), e.getMessage());
        assertThrows(UserError.class, () -> DdimConfig.read(dir.resolve("missing.json")));
    }
}
