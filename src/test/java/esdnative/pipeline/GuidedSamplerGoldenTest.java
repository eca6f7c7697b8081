package esdnative.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.testing.FixtureWeights;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The 10-step guided DDIM run of StableDiffusionPipeline (guidance 7.5, eta 0) on tiny-sd-a from the fixture's
 * initial latents, with the fixture's text embeddings of "" and "a photo of a cat": every step's latents and the
 * final ones. Tolerance: the manifest's suggested_rel_linf (max error / max |golden|), since the latents grow to
 * |x| ≈ 31.
 */
class GuidedSamplerGoldenTest {
    @Test
    void tenGuidedStepsMatchThePipeline() {
        JsonNode files = Json.tree(Fixtures.golden("manifest.json")).get("files");
        Backend be = new CpuBackend();
        UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        Weights weights = FixtureWeights.unet(be, config, Fixtures.path("tiny-sd-a"));
        DdimScheduler scheduler = new DdimScheduler(DdimConfig.read(Fixtures.path("tiny-sd-a/scheduler/scheduler_config.json")));
        scheduler.setTimesteps(10);
        long[] expectedTimesteps = Npy.read(Fixtures.golden("pipeline_step_timesteps.npy")).longs();
        for (int i = 0; i < 10; i++) assertEquals(expectedTimesteps[i], scheduler.timesteps()[i]);

        Tensor latents = load(be, "pipeline_in_latents");
        List<float[]> perStep = new ArrayList<>();
        Tensor out = GuidedSampler.sample(be, unet, weights, scheduler, latents, load(be, "esd_in_emb_null"),
                load(be, "esd_in_emb_concept"), 7.5f, 10, 0f, null, (i, t, x) -> perStep.add(be.toHost(x)));

        float[] stepGolden = Npy.read(Fixtures.golden("pipeline_step_latents.npy")).floats();
        double relTol = files.get("pipeline_step_latents").get("f32_vs_f64").get("suggested_rel_linf").asDouble();
        int per = (int) latents.size();
        for (int i = 0; i < 10; i++) {
            float[] expected = java.util.Arrays.copyOfRange(stepGolden, i * per, (i + 1) * per);
            Goldens.assertRelClose("step " + i, expected, perStep.get(i), relTol);
        }
        Goldens.assertRelClose("final", Npy.read(Fixtures.golden("pipeline_out_latents.npy")).floats(), be.toHost(out),
                files.get("pipeline_out_latents").get("f32_vs_f64").get("suggested_rel_linf").asDouble());
    }

    private static Tensor load(Backend be, String name) {
        NpyArray a = Npy.read(Fixtures.golden(name + ".npy"));
        return be.fromHost(a.floats(), a.shape());
    }
}
