package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;

import java.util.Arrays;

/**
 * Batched DDIM sampling with classifier-free guidance (eta 0): n images at once, each UNet call a batch of 2n
 * ([x, x] with [uncond, cond]), ε = ε_u + g (ε_c − ε_u). The per-image maths is GuidedSampler's; only the batch
 * differs, which is what makes evaluating hundreds of toy images affordable.
 */
public final class ToySampler {
    private ToySampler() {}

    /**
     * @param noise   start noise [n, c, h, w]
     * @param uncond  contexts of the empty prompt [n, tokens, dim]
     * @param cond    contexts of the prompts [n, tokens, dim]
     * @return the images x_0 [n, c, h, w] after all of the scheduler's timesteps (set with setTimesteps)
     */
    public static Tensor sample(Backend be, UNet2DConditionModel unet, Weights weights, DdimScheduler scheduler,
                                Tensor noise, Tensor uncond, Tensor cond, float guidance) {
        int n = noise.dim(0);
        long size = noise.size();
        int[] doubled = noise.shape();
        doubled[0] = 2 * n;
        int[] ctxShape = uncond.shape();
        ctxShape[0] = 2 * n;
        Tensor contexts = be.zeros(ctxShape);
        be.copy(contexts.view(0, uncond.shape()), uncond);
        be.copy(contexts.view(uncond.size(), cond.shape()), cond);

        Tensor x = be.zeros(noise.shape());
        be.copy(x, noise);
        Tensor xx = be.zeros(doubled);
        Tensor eps = be.zeros(noise.shape());
        Tensor predX0 = be.zeros(noise.shape());
        float[] t2 = new float[2 * n];
        for (int t : scheduler.timesteps()) {
            be.copy(xx.view(0, noise.shape()), x);
            be.copy(xx.view(size, noise.shape()), x);
            Arrays.fill(t2, t);
            Tensor out = unet.forward(be, weights, xx, t2, contexts).output();
            be.linearCombination(eps, 1 - guidance, out.view(0, noise.shape()), guidance, out.view(size, noise.shape()), size);
            Tensor next = be.zeros(noise.shape());
            scheduler.step(be, next, predX0, eps, t, x, 0f, null);
            x = next;
        }
        return x;
    }
}
