package esdnative.model.sdxl;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.backend.cpu.CpuBackend;
import esdnative.esd.TrainableSubset;
import esdnative.io.Json;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.optim.Adam;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One ESD-x iteration of rohitgandikota/erasing's esd_sdxl.py on tiny-sdxl-a (README-sdxl.md §4), built from the
 * model side alone: the embeddings with negative prompt "" (encoded, not zeros), x_t sampled by the frozen model
 * (guidance 2, zeros as the unconditional input, the first 10 of 50 DDIM steps), ep/e0 from the frozen model,
 * en from the trainable copy, the authors' target ep − 1·(ep − e0), MSE, the gradients of the 60 attn2 tensors
 * and one Adam step (lr 1e-5). Tolerances: the manifest's suggested_atol per file, except the gradients, which
 * README-sdxl.md bounds relative to their (small) largest value.
 */
class SdxlEsdStepGoldenTest {
    private static final String CONCEPT = "a photo of a cat";

    @Test
    void oneEsdXStepAsTheAuthorsSdxlScript() {
        Backend be = new CpuBackend();
        StableDiffusionXL sd = StableDiffusionXL.loadFolder(be, TinySdxl.model(""));
        JsonNode scalars = Json.tree(TinySdxl.golden("manifest.json")).path("scalars");

        PromptEmbeds prompt = sd.text().encode(CONCEPT);
        PromptEmbeds nullPrompt = sd.text().encodeNegative("", prompt);
        TinySdxl.assertClose(be, "esd_prompt_embeds", prompt.embeds());
        TinySdxl.assertClose(be, "esd_pooled", prompt.pooled());
        TinySdxl.assertClose(be, "esd_null_embeds", nullPrompt.embeds());
        TinySdxl.assertClose(be, "esd_null_pooled", nullPrompt.pooled());
        float[] timeIds = MicroConditioning.uncropped(32, 32).timeIds();
        assertArrayEquals(TinySdxl.npy("esd_add_time_ids").floats(), timeIds);

        // x_t: the frozen pipeline's first 10 of 50 steps, guidance 2, the unconditional input zeros (no negative prompt)
        UNet2DConditionModel unet = sd.unetModel();
        DdimScheduler scheduler = new DdimScheduler(sd.scheduler());
        scheduler.setTimesteps(50);
        List<float[]> steps = new ArrayList<>();
        Tensor xt = GuidedSampler.sample(be, unet, sd.unetWeights(), scheduler, TinySdxl.tensor(be, "esd_in_init_noise"),
                sd.text().encodeNegative(null, prompt), prompt, timeIds, 2f, 10,
                (i, t, latents) -> steps.add(be.toHost(latents)), null);
        float[] allSteps = new float[steps.size() * steps.getFirst().length];
        for (int i = 0; i < steps.size(); i++) System.arraycopy(steps.get(i), 0, allSteps, i * steps.get(i).length, steps.get(i).length);
        TinySdxl.assertClose("esd_sampling_step_latents", new int[] {10, 1, 4, 16, 16}, allSteps,
                TinySdxl.tolerance("esd_sampling_step_latents", "suggested_atol"));
        TinySdxl.assertClose(be, "esd_xt", xt);
        int t = scheduler.timesteps()[10];
        assertEquals(TinySdxl.npy("esd_in_t").longs()[0], t);

        // the frozen model on [x_t, x_t] with [null, concept]; the trainable copy on the concept
        TrainableSubset subset = TrainableSubset.select(be, sd.unetWeights(), name -> name.contains("attn2"));
        assertEquals(scalars.path("esd_num_trainable_parameters").asInt(), subset.parameterCount());
        float[] bothIds = new float[12];
        System.arraycopy(timeIds, 0, bothIds, 0, 6);
        System.arraycopy(timeIds, 0, bothIds, 6, 6);
        Tensor frozenOut = unet.predict(be, sd.unetWeights(), Batch.stack(be, xt, xt), new float[] {t, t},
                Batch.stack(be, nullPrompt.embeds(), prompt.embeds()),
                new UNet2DConditionModel.TextTimeInputs(Batch.stack(be, nullPrompt.pooled(), prompt.pooled()), bothIds));
        Tensor e0 = frozenOut.view(0, xt.shape()), ep = frozenOut.view(xt.size(), xt.shape());
        TinySdxl.assertClose(be, "esd_e0", e0);
        TinySdxl.assertClose(be, "esd_ep", ep);
        // esd_sdxl.py's target ep − η(ep − e0) with η = 1
        Tensor diff = be.zeros(xt.shape()), target = be.zeros(xt.shape());
        be.linearCombination(diff, 1f, ep, -1f, e0, xt.size());
        be.linearCombination(target, 1f, ep, -1f, diff, xt.size());
        TinySdxl.assertClose(be, "esd_target", target);

        var textTime = new UNet2DConditionModel.TextTimeInputs(prompt.pooled(), timeIds);
        UNet2DConditionModel.Activations acts = unet.forward(be, subset.trainable(), xt, new float[] {t}, prompt.embeds(), textTime);
        TinySdxl.assertClose(be, "esd_en", acts.output());
        float loss = be.mseLoss(acts.output(), target, xt.size());
        assertEquals(TinySdxl.npy("esd_loss").floats()[0], loss, TinySdxl.tolerance("esd_loss", "suggested_atol"));
        Tensor dEn = be.zeros(xt.shape());
        be.mseLossBackward(dEn, acts.output(), target, xt.size(), 1f);
        unet.backward(be, subset.trainable(), subset.gradients(), acts, dEn, null, null);

        List<String> checked = new ArrayList<>();
        for (String file : TinySdxl.golden("").toFile().list()) {
            if (file.startsWith("esd_grad__")) checked.add(file.substring("esd_grad__".length(), file.length() - ".npy".length()));
        }
        assertEquals(4, checked.size());
        for (String name : checked) {
            float[] golden = TinySdxl.npy("esd_grad__" + name).floats();
            double max = 0;
            for (float g : golden) max = Math.max(max, Math.abs(g));
            TinySdxl.assertClose(be, "esd_grad__" + name, subset.gradients().get(name), 1e-4 * max);
            assertArrayEquals(TinySdxl.npy("esd_param_before__" + name).floats(), be.toHost(subset.trained().get(name)));
        }

        Adam adam = new Adam(be, subset.trained(), Adam.Config.torchDefaults((float) scalars.path("esd_settings").path("lr").asDouble()));
        adam.step(be, subset.trained(), subset.gradients());
        for (String name : checked) TinySdxl.assertClose(be, "esd_param_after__" + name, subset.trained().get(name));

        Tensor after = unet.predict(be, subset.trainable(), xt, new float[] {t}, prompt.embeds(), textTime);
        TinySdxl.assertClose(be, "esd_en_after_step", after);
        float lossAfter = be.mseLoss(after, target, xt.size());
        assertEquals(TinySdxl.npy("esd_loss_after_step").floats()[0], lossAfter,
                TinySdxl.tolerance("esd_loss_after_step", "suggested_atol"));
        assertTrue(lossAfter < loss, "one step lowers the loss: " + loss + " → " + lossAfter);
    }
}
