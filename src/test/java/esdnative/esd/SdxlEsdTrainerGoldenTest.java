package esdnative.esd;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The fixture's ESD-x iteration of the authors' esd_sdxl.py (README-sdxl.md §4) run by the trainer itself, through
 * {@link EsdRun#step}: the frozen sampler on the aligned schedule (x_t = the first 10 of 50 DDIM steps at guidance
 * 2, t = timesteps[10] = 781), the 2025 target ep − η(ep − e0), lr 1e-5, ESD-x. The draw replays the fixture's
 * start noise; everything else — the conditioning with pooled embeddings and time ids, the null prompt, the
 * trained set, the loss and the Adam step — is the trainer's. Tolerances: the manifest's suggested_atol per file.
 */
class SdxlEsdTrainerGoldenTest {
    private static final String CONCEPT = "a photo of a cat";

    private static EsdTrainer trainer(Backend be, StableDiffusionXL sd, Target target) {
        JsonNode esd = scalars().path("esd_settings");
        EsdTrainer.Settings s = EsdTrainer.Settings.paper(List.of(CONCEPT)).withMethod(TrainMethod.XATTN)
                .withIterations(1).withLr((float) esd.path("lr").asDouble())
                .withNegativeGuidance((float) esd.path("negative_guidance").asDouble())
                .withStartGuidance((float) esd.path("guidance_scale").asDouble())
                .withDdimSteps(esd.path("num_inference_steps").asInt()).withSchedule(Schedule.ALIGNED)
                .withResolution(scalars().path("image_size").asInt()).withSampler(Sampler.FROZEN).withTarget(target);
        return new EsdTrainer(be, sd, s);
    }

    private static EsdTrainer.Draw fixtureDraw(EsdTrainer trainer) {
        int tEnc = scalars().path("esd_settings").path("run_till_timestep").asInt();
        return trainer.replayed(CONCEPT, tEnc, scalars().path("esd_t").asInt(),
                TinySdxl.npy("esd_in_init_noise").floats(), 0);
    }

    private static JsonNode scalars() {
        return Json.tree(TinySdxl.golden("manifest.json")).path("scalars");
    }

    @Test
    void theTrainerRunsTheAuthorsSdxlStep() {
        Backend be = new CpuBackend();
        StableDiffusionXL sd = StableDiffusionXL.loadFolder(be, TinySdxl.model(""));
        EsdTrainer trainer = trainer(be, sd, Target.ESD_2025);
        // ESD-x on the original names trains exactly the tensors esd_sdxl.py trains
        List<String> expected = new ArrayList<>();
        scalars().path("esd_trainable_parameter_names").forEach(n -> expected.add(n.asText()));
        assertEquals(expected.stream().sorted().toList(), trainer.subset().trained().asMap().keySet().stream().sorted().toList());

        EsdTrainer.Draw draw = fixtureDraw(trainer);
        assertEquals(TinySdxl.npy("esd_in_t").longs()[0], draw.plan().tDdpm());
        TinySdxl.assertClose(be, "esd_xt", trainer.sample(draw));

        EsdTrainer.Iteration it = new EsdRun(trainer).step(draw);
        assertEquals(TinySdxl.npy("esd_loss").floats()[0], it.loss(), TinySdxl.tolerance("esd_loss", "suggested_atol"));
        int checked = 0;
        for (String file : TinySdxl.golden("").toFile().list()) {
            if (!file.startsWith("esd_param_after__")) continue;
            String name = file.substring("esd_param_after__".length(), file.length() - ".npy".length());
            TinySdxl.assertClose(be, "esd_param_after__" + name, trainer.subset().trained().get(name));
            checked++;
        }
        assertEquals(4, checked);
    }

    @Test
    void thePaperTargetGivesTheManifestsPaperLoss() {
        Backend be = new CpuBackend();
        EsdTrainer trainer = trainer(be, StableDiffusionXL.loadFolder(be, TinySdxl.model("")), Target.PAPER);
        float loss = trainer.step(fixtureDraw(trainer)).loss();
        double f32 = scalars().path("esd_loss_paper_target_e0_minus_eta_diff").asDouble();
        double f64 = scalars().path("esd_loss_paper_target_e0_minus_eta_diff_f64").asDouble();
        // 10× the golden's own float32-vs-float64 error, as the manifest's suggested tolerances are made
        assertEquals(f64, loss, 10 * Math.abs(f32 - f64) + 1e-6 * Math.abs(f64));
    }
}
