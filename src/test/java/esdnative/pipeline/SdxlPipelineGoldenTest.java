package esdnative.pipeline;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * StableDiffusionXLPipeline (diffusers 0.21.4) on tiny-sdxl-a with DDIMScheduler.from_config of its Euler config:
 * the scheduler's schedule and steps, the 10-step pipeline ("a photo of a cat", guidance 5, no negative prompt, so
 * the unconditional input is zeros) step by step — each step's raw UNet outputs and latents — the final latents
 * (issue bar: relative error ≤ 1e-4; the manifest's suggested_rel_linf is tighter and is what is asserted), and
 * the VAE decode (scaling factor 0.13025, float32), each within the manifest's tolerances.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SdxlPipelineGoldenTest {
    private static final int STEPS = 10;
    private final Backend be = new CpuBackend();
    private StableDiffusionXL sd;

    @BeforeAll
    void setUp() {
        sd = StableDiffusionXL.loadFolder(be, TinySdxl.model(""));
    }

    private static int[] ints(String name) {
        long[] l = TinySdxl.npy(name).longs();
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) out[i] = Math.toIntExact(l[i]);
        return out;
    }

    @Test
    void ddimFromTheEulerConfig() {
        DdimScheduler s = new DdimScheduler(sd.scheduler());
        TinySdxl.assertClose("ddim_alphas_cumprod", new int[] {1000}, s.alphasCumprod(),
                TinySdxl.tolerance("ddim_alphas_cumprod", "suggested_atol"));
        s.setTimesteps(50);
        assertArrayEquals(ints("ddim_timesteps_50"), s.timesteps());
        s.setTimesteps(STEPS);
        assertArrayEquals(ints("ddim_timesteps_10"), s.timesteps());
        Tensor model = TinySdxl.tensor(be, "ddim_step_in_model_output");
        Tensor sample = TinySdxl.tensor(be, "ddim_step_in_sample");
        for (int t : new int[] {901, 501, 1}) {
            Tensor prev = be.zeros(sample.shape()), x0 = be.zeros(sample.shape());
            s.step(be, prev, x0, model, t, sample, 0f, null);
            TinySdxl.assertClose(be, "ddim_step_t" + t + "_prev_sample", prev);
            TinySdxl.assertClose(be, "ddim_step_t" + t + "_pred_original_sample", x0);
        }
    }

    @Test
    void tenStepPipeline() {
        float guidance = (float) Json.tree(TinySdxl.golden("manifest.json")).path("scalars")
                .path("pipeline_guidance_scale").asDouble();
        assertEquals(5f, guidance);
        List<Integer> timesteps = new ArrayList<>();
        float[] stepLatents = new float[STEPS * 4 * 16 * 16];
        float[] stepEps = new float[STEPS * 2 * 4 * 16 * 16];
        int n = 4 * 16 * 16;
        TextToImage.Result r = SdxlTextToImage.run(be, sd,
                new SdxlTextToImage.Request("a photo of a cat", null, STEPS, guidance, 0, 32, 32, null,
                        TinySdxl.npy("pipeline_in_latents").floats()),
                (i, t, latents) -> {
                    timesteps.add(t);
                    System.arraycopy(be.toHost(latents), 0, stepLatents, i * n, n);
                },
                (i, t, latents, epsUncond, epsCond) -> {
                    System.arraycopy(be.toHost(epsUncond), 0, stepEps, 2 * i * n, n);
                    System.arraycopy(be.toHost(epsCond), 0, stepEps, (2 * i + 1) * n, n);
                });

        assertArrayEquals(ints("pipeline_step_timesteps"), timesteps.stream().mapToInt(Integer::intValue).toArray());
        TinySdxl.assertClose("pipeline_step_unet_eps", new int[] {STEPS, 2, 4, 16, 16}, stepEps,
                TinySdxl.tolerance("pipeline_step_unet_eps", "suggested_atol"));
        TinySdxl.assertClose("pipeline_step_latents", new int[] {STEPS, 1, 4, 16, 16}, stepLatents,
                TinySdxl.tolerance("pipeline_step_latents", "suggested_atol"));
        TinySdxl.assertRelClose("pipeline_out_latents", r.latents(),
                TinySdxl.tolerance("pipeline_out_latents", "suggested_rel_linf"));
        TinySdxl.assertClose("pipeline_out_image_np", new int[] {1, 32, 32, 3}, r.image(),
                TinySdxl.tolerance("pipeline_out_image_np", "suggested_atol"));
        // the decode of the fixture's own final latents (the image golden above also carries the sampling's error)
        TinySdxl.assertClose(be, "vae_decoded_image",
                sd.vae().decoder().decode(be, sd.vae().weights(), TinySdxl.tensor(be, "pipeline_out_latents")));
    }

    /** `generate --init-latents` reproduces the pipeline from the folder and from the single file (with --config). */
    @Test
    void generateReproducesThePipeline(@TempDir Path tmp) throws IOException {
        Path folder = TinySdxl.model(""), single = Fixtures.path("tiny-sdxl-a-single-file.safetensors");
        for (Path model : new Path[] {folder, single}) {
            Path png = tmp.resolve(model.getFileName() + ".png"), saved = tmp.resolve(model.getFileName() + ".npy");
            assertEquals(0, Main.run("generate", "--model", model.toString(), "--config", folder.toString(),
                    "--prompt", "a photo of a cat", "--steps", "10", "--guidance", "5",
                    "--init-latents", TinySdxl.golden("pipeline_in_latents.npy").toString(),
                    "--save-latents", saved.toString(), "--output", png.toString(), "--backend", "cpu"));
            TinySdxl.assertRelClose("pipeline_out_latents", Npy.read(saved).floats(), 1e-4);
            assertTrue(Files.size(png) > 0);
        }
        assertEquals(2, Main.run("generate", "--model", folder.toString(), "--prompt", "a cat", "--output",
                tmp.resolve("x.png").toString(), "--original-size", "32", "--backend", "cpu"));
    }

    @Test
    void vaeDecodeWithSdxlScaling() {
        assertEquals(0.13025f, sd.vae().config().scalingFactor());
        TinySdxl.assertClose(be, "vae_decode_out_image",
                sd.vae().decoder().decode(be, sd.vae().weights(), TinySdxl.tensor(be, "vae_decode_in_latents")));
    }
}
