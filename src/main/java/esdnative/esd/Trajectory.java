package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One guided DDIM trajectory of the frozen model from a start noise, sampled as far as the points asked of it:
 * point k is z_k (the latents after k steps, at DDIM timestep timesteps[k]) with the frozen model's predictions
 * there, e0 = ε*(z_k, t, "") and ep = ε*(z_k, t, c) — what the aligned schedule's iteration k needs, from the same
 * batch-2 forward the sampling step runs. Points are kept on the host, three latents each.
 */
final class Trajectory {
    /** z, e0 and ep of one DDIM index, each [1, c, h, w] flattened. */
    record Point(float[] z, float[] e0, float[] ep) {}

    private final int number;
    private final String concept;
    private final float[] start;
    private final List<Point> points = new ArrayList<>();
    private float[] next; // the latents after points.size() steps

    Trajectory(int number, String concept, float[] start) {
        this.number = number;
        this.concept = concept;
        this.start = start.clone();
        this.next = start.clone();
    }

    /** Whether this is the trajectory a draw names. */
    boolean isOf(EsdTrainer.Draw d) {
        return number == d.trajectory() && concept.equals(d.concept()) && Arrays.equals(start, d.startCode());
    }

    /**
     * Point k, first running the guided steps up to it that have not run yet (one batch-2 forward of the frozen
     * weights each; on SDXL with the pooled embeddings and {@code timeIds}, null for SD).
     */
    Point point(int k, Backend be, UNet2DConditionModel unet, Weights frozen, DdimScheduler scheduler, int[] timesteps,
                PromptEmbeds embNull, PromptEmbeds embConcept, float[] timeIds, float guidance, int[] latentShape) {
        if (k >= points.size()) {
            try (Scope scope = be.openScope()) {
                Tensor x = be.fromHost(next, latentShape);
                Tensor end = GuidedSampler.sample(be, unet, frozen, scheduler, x, embNull, embConcept, timeIds, guidance,
                        Arrays.copyOfRange(timesteps, points.size(), k + 1),
                        (i, t, z, e0, ep) -> points.add(new Point(be.toHost(z), be.toHost(e0), be.toHost(ep))));
                next = be.toHost(end);
            }
        }
        return points.get(k);
    }
}
