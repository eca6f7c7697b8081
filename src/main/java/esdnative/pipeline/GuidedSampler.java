package esdnative.pipeline;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.backend.RepeatedStep;
import esdnative.model.Weights;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * DDIM sampling with classifier-free guidance, as StableDiffusionPipeline and the ESD paper code do it: each step
 * runs one batch-2 forward on [x, x] with [emb(uncond), emb(cond)], then ε = ε_u + g (ε_c − ε_u) and a DDIM step.
 */
public final class GuidedSampler {
    /** Called after each step with the step's index, its timestep and the new latents. */
    public interface StepListener {
        void afterStep(int index, int timestep, Tensor latents);
    }

    /** Called at each step, before guidance, with the latents at the step's timestep and the model's two predictions. */
    public interface PredictionListener {
        void atStep(int index, int timestep, Tensor latents, Tensor epsUncond, Tensor epsCond);
    }

    private GuidedSampler() {}

    /**
     * Runs the first {@code steps} timesteps of the scheduler's schedule (set with setTimesteps) from
     * {@code latents} [1, c, h, w] and returns the new latents (eta 0 unless {@code varianceNoise} is given).
     */
    public static Tensor sample(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                                Tensor latents, Tensor embUncond, Tensor embCond, float guidance, int steps,
                                float eta, Supplier<Tensor> varianceNoise, StepListener listener) {
        int[] timesteps = scheduler.timesteps();
        if (steps > timesteps.length) {
            throw new IllegalArgumentException(steps + " steps asked of a " + timesteps.length + "-step schedule");
        }
        return run(be, unet, weights, scheduler, latents, embUncond, embCond, null, guidance,
                Arrays.copyOf(timesteps, steps), eta, varianceNoise, listener, null);
    }

    /**
     * Runs the given timesteps in order from {@code latents} [1, c, h, w] (eta 0), each step landing on
     * t − T // numInferenceSteps as the scheduler's steps do; {@code predictions} (may be null) sees every step's
     * model outputs.
     */
    public static Tensor sample(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                                Tensor latents, Tensor embUncond, Tensor embCond, float guidance, int[] timesteps,
                                PredictionListener predictions) {
        return run(be, unet, weights, scheduler, latents, embUncond, embCond, null, guidance, timesteps, 0f, null, null,
                predictions);
    }

    /**
     * SDXL's guided DDIM sampling (eta 0): the first {@code steps} timesteps of the scheduler's schedule, each
     * forward on [x, x] with the [uncond, cond] prompts' token embeddings, their pooled embeddings and the same
     * time ids ({@code timeIds}, six per sample) for both halves, as StableDiffusionXLPipeline does.
     */
    public static Tensor sample(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                                Tensor latents, PromptEmbeds uncond, PromptEmbeds cond, float[] timeIds,
                                float guidance, int steps, StepListener listener, PredictionListener predictions) {
        int[] timesteps = scheduler.timesteps();
        if (steps > timesteps.length) {
            throw new IllegalArgumentException(steps + " steps asked of a " + timesteps.length + "-step schedule");
        }
        return run(be, unet, weights, scheduler, latents, uncond.embeds(), cond.embeds(), added(be, uncond, cond, timeIds),
                guidance, Arrays.copyOf(timesteps, steps), 0f, null, listener, predictions);
    }

    /**
     * Runs the given timesteps in order from {@code latents} [1, c, h, w] (eta 0), as the {@code int[]} overload for
     * SD does, conditioned as SDXL's pipeline conditions (pooled embeddings and time ids for both halves); with
     * {@code timeIds} null, a UNet without added conditioning (the pooled embeddings are then not read).
     */
    public static Tensor sample(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                                Tensor latents, PromptEmbeds uncond, PromptEmbeds cond, float[] timeIds,
                                float guidance, int[] timesteps, PredictionListener predictions) {
        var added = timeIds == null ? null : added(be, uncond, cond, timeIds);
        return run(be, unet, weights, scheduler, latents, uncond.embeds(), cond.embeds(), added, guidance, timesteps,
                0f, null, null, predictions);
    }

    /** SDXL's added conditioning of a [uncond, cond] batch: both pooled embeddings, the same time ids twice. */
    private static UNet2DConditionModel.TextTimeInputs added(Backend be, PromptEmbeds uncond, PromptEmbeds cond,
                                                             float[] timeIds) {
        float[] bothIds = Arrays.copyOf(timeIds, 2 * timeIds.length);
        System.arraycopy(timeIds, 0, bothIds, timeIds.length, timeIds.length);
        return new UNet2DConditionModel.TextTimeInputs(Batch.stack(be, uncond.pooled(), cond.pooled()), bothIds);
    }

    /**
     * What a step's batch-2 forward computes with besides its inputs: the model, its weights (the same tensors,
     * updated in place by training or not) and SDXL's time ids (null for SD).
     */
    private record ForwardKey(UNet2DConditionModel unet, Weights weights, List<Float> timeIds) {}

    /**
     * The UNet on [x, x] at timestep t, as a repeated step of the backend: the same shapes at every step and every
     * sampling with these weights, so CUDA records it once as a graph and replays it.
     */
    private static Tensor guidedForward(Backend be, UNet2DConditionModel unet, Weights weights, Tensor xx, int t,
                                        Tensor contexts, UNet2DConditionModel.TextTimeInputs added) {
        Tensor timesteps = be.fromHost(new float[] {t, t}, 2);
        Tensor[] inputs = added == null ? new Tensor[] {xx, timesteps, contexts}
                : new Tensor[] {xx, timesteps, contexts, added.textEmbeds()};
        List<Float> timeIds = null;
        if (added != null) {
            timeIds = new ArrayList<>();
            for (float id : added.timeIds()) timeIds.add(id);
        }
        return be.repeatedStep(new ForwardKey(unet, weights, timeIds), inputs, new RepeatedStep() {
            @Override
            public Tensor run(Tensor[] in) {
                var textTime = added == null ? null : new UNet2DConditionModel.TextTimeInputs(in[3], added.timeIds());
                return unet.predict(be, weights, in[0], in[1], in[2], textTime);
            }

            @Override
            public void replayed() {
                unet.evaluations().addForwards(xx.dim(0));
            }
        });
    }

    private static Tensor run(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                              Tensor latents, Tensor embUncond, Tensor embCond,
                              UNet2DConditionModel.TextTimeInputs added, float guidance, int[] timesteps, float eta,
                              Supplier<Tensor> varianceNoise, StepListener listener, PredictionListener predictions) {
        Tensor contexts = Batch.stack(be, embUncond, embCond);
        long n = latents.size();
        Tensor x = latents;
        Tensor eps = be.zeros(latents.shape());
        for (int i = 0; i < timesteps.length; i++) {
            int t = timesteps[i];
            Tensor out = guidedForward(be, unet, weights, Batch.stack(be, x, x), t, contexts, added);
            Tensor epsUncond = out.view(0, latents.shape());
            Tensor epsCond = out.view(n, latents.shape());
            if (predictions != null) predictions.atStep(i, t, x, epsUncond, epsCond);
            be.linearCombination(eps, 1 - guidance, epsUncond, guidance, epsCond, n);
            Tensor next = be.zeros(latents.shape());
            Tensor predX0 = be.zeros(latents.shape());
            scheduler.step(be, next, predX0, eps, t, x, eta, eta > 0 ? varianceNoise.get() : null);
            x = next;
            if (listener != null) listener.afterStep(i, t, x);
        }
        return x;
    }
}
