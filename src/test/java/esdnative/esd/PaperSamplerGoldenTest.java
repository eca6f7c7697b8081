package esdnative.esd;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.unet.Evaluations;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The paper schedule's sampling against the paper code's own sampler (ddim.py with t_start = −1, till_T = t_enc)
 * on tiny-sd-a (fixtures README: paper_sampler_10/ and paper_sampler_30/): for every t_enc, the UNet timesteps
 * called, the number of guided steps (and the model's count of forwards, two a step) and z within the manifest's
 * suggested rel 1e-4 of max|z| (float32 vs the reference's float32 on another machine's kernels).
 */
class PaperSamplerGoldenTest {
    @ParameterizedTest
    @ValueSource(ints = {10, 30})
    void everyTEncMatchesThePaperCode(int ddimSteps) {
        var dir = Fixtures.golden("paper_sampler_" + ddimSteps);
        JsonNode manifest = Json.tree(dir.resolve("manifest.json"));
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        String prompt = manifest.get("prompt").asText();
        EsdTrainer trainer = new EsdTrainer(be, sd, EsdTrainer.Settings.paper(List.of(prompt)).withIterations(1)
                .withStartGuidance((float) manifest.get("guidance").asDouble()).withDdimSteps(ddimSteps)
                .withResolution(sd.defaultResolution()));
        float[] start = Npy.read(dir.resolve("start_code.npy")).floats();
        double relTol = manifest.get("suggested_rel_linf").asDouble();
        JsonNode perTEnc = manifest.get("per_t_enc");
        assertEquals(ddimSteps, perTEnc.size());
        // every t_enc samples a prefix of one trajectory: run the longest once, keeping z after each step
        EsdTrainer.Draw longest = trainer.replayed(prompt, 0, 0, start, 0);
        DdimScheduler scheduler = new DdimScheduler(sd.scheduler());
        scheduler.setTimesteps(ddimSteps);
        List<float[]> afterSteps = new ArrayList<>();
        afterSteps.add(start);
        Tensor end = GuidedSampler.sample(be, sd.unetModel(), sd.unetWeights(), scheduler,
                be.fromHost(start, trainer.latentShape()), context(sd, ""), context(sd, prompt), trainer.settings().startGuidance(),
                longest.plan().timesteps(), (i, t, z, e0, ep) -> { if (i > 0) afterSteps.add(be.toHost(z)); });
        afterSteps.add(be.toHost(end));
        for (int k = 0; k < ddimSteps; k++) {
            JsonNode expected = perTEnc.get(Integer.toString(k));
            EsdTrainer.Draw draw = trainer.replayed(prompt, k, 1000 * k / ddimSteps, start, 0);
            int[] called = new int[expected.get("unet_timesteps_called").size()];
            for (int i = 0; i < called.length; i++) called[i] = expected.get("unet_timesteps_called").get(i).asInt();
            assertArrayEquals(called, draw.plan().timesteps(), "t_enc " + k + ": timesteps");
            assertEquals(expected.get("guided_steps").asInt(), draw.plan().ddimSteps(), "t_enc " + k + ": steps");

            float[] golden = Npy.read(dir.resolve("z_tenc_" + k + ".npy")).floats();
            // the trainer's own sampling (with the model's count of its forwards) for the longest and shortest runs
            if (k == 0 || k == ddimSteps - 1) {
                Evaluations.Count before = trainer.unet().evaluations().count();
                float[] z = be.toHost(trainer.sample(draw));
                Evaluations.Count ran = trainer.unet().evaluations().count().minus(before);
                assertEquals(2L * expected.get("guided_steps").asInt(), ran.forwards(), "t_enc " + k + ": batch-2 forwards");
                Goldens.assertRelClose("t_enc " + k + ", trainer", golden, z, relTol);
            }
            Goldens.assertRelClose("t_enc " + k, golden, afterSteps.get(draw.plan().ddimSteps()), relTol);
        }
    }

    private static Tensor context(StableDiffusion sd, String prompt) {
        return sd.textEncoder().forward(sd.tokenizer().encodePadded(prompt), 1);
    }
}
