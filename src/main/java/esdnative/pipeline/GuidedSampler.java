package esdnative.pipeline;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;

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
        Tensor contexts = Batch.stack(be, embUncond, embCond);
        long n = latents.size();
        Tensor x = latents;
        Tensor eps = be.zeros(latents.shape());
        for (int i = 0; i < steps; i++) {
            int t = timesteps[i];
            Tensor out = unet.predict(be, weights, Batch.stack(be, x, x), new float[] {t, t}, contexts);
            Tensor epsUncond = out.view(0, latents.shape());
            Tensor epsCond = out.view(n, latents.shape());
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
