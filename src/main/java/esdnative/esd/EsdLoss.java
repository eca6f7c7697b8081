package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.model.Weights;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.tensor.Tensor;

import java.util.Arrays;

/**
 * The ESD objective at one (z, t) (ESD-SPEC.md): the frozen model gives e0 = ε*(z, t, emb("")) and
 * ep = ε*(z, t, emb(c)) in one batch-2 forward; the trainable model gives en = ε_θ(z, t, emb(c));
 * loss = mean((en − target)²) with the paper's target e0 − η (ep − e0) or the 2025 code's ep − η (ep − e0)
 * ({@link Target}). {@link #compute} also accumulates dloss/dθ into the trainable gradients. On SDXL every UNet call
 * also gets the prompt's pooled embedding and the time ids (the same ids for every sample).
 */
public final class EsdLoss {
    private EsdLoss() {}

    /** e0, ep, en as [1, c, h, w]; the target; the loss. */
    public record Result(Tensor e0, Tensor ep, Tensor en, Tensor target, float loss) {}

    /**
     * The paper's objective on an SD 1.x / 2.x UNet (contexts only).
     *
     * @param z           latents [1, c, h, w]
     * @param t           the training timestep (t_ddpm)
     * @param embNull     context of the empty prompt [1, tokens, dim]
     * @param embConcept  context of the concept [1, tokens, dim]
     * @param gradients   where dloss/dθ accumulates (only the tensors it holds are computed)
     */
    public static Result compute(Backend be, UNet2DConditionModel unet, Weights frozen, Weights trainable,
                                 Weights gradients, Tensor z, int t, Tensor embNull, Tensor embConcept, float eta) {
        return compute(be, unet, frozen, trainable, gradients, z, t, new PromptEmbeds(embNull, null),
                new PromptEmbeds(embConcept, null), null, Target.PAPER, eta);
    }

    /**
     * @param embNull    the empty prompt: context [1, tokens, dim] and, on SDXL, pooled embedding [1, p] (else null)
     * @param embConcept the concept, likewise
     * @param timeIds    SDXL's six time ids, or null for a UNet without added conditioning
     */
    public static Result compute(Backend be, UNet2DConditionModel unet, Weights frozen, Weights trainable,
                                 Weights gradients, Tensor z, int t, PromptEmbeds embNull, PromptEmbeds embConcept,
                                 float[] timeIds, Target target, float eta) {
        // frozen model, batch 2: [z, z] with [emb(""), emb(c)]
        be.labelAllocations("frozen forward");
        Tensor zz = Batch.stack(be, z, z);
        Tensor contexts = Batch.stack(be, embNull.embeds(), embConcept.embeds());
        UNet2DConditionModel.TextTimeInputs added = timeIds == null ? null : new UNet2DConditionModel.TextTimeInputs(
                Batch.stack(be, embNull.pooled(), embConcept.pooled()), twice(timeIds));
        Tensor frozenOut = unet.predict(be, frozen, zz, new float[] {t, t}, contexts, added);
        Tensor e0 = frozenOut.view(0, z.shape());
        Tensor ep = frozenOut.view(z.size(), z.shape());
        return withFrozenPredictions(be, unet, trainable, gradients, z, t, e0, ep, embConcept, timeIds, target, eta);
    }

    /**
     * The trainable half of {@link #compute}, given the frozen model's e0 and ep at (z, t) [1, c, h, w] (reused
     * from the guided sampling step that visited (z, t) with the same batch layout, or computed by compute).
     */
    public static Result withFrozenPredictions(Backend be, UNet2DConditionModel unet, Weights trainable,
                                               Weights gradients, Tensor z, int t, Tensor e0, Tensor ep,
                                               PromptEmbeds embConcept, float[] timeIds, Target target, float eta) {
        long n = z.size();
        Tensor goal = be.zeros(z.shape());
        be.linearCombination(goal, target.e0Weight(eta), e0, target.epWeight(eta), ep, n);

        UNet2DConditionModel.TextTimeInputs added = timeIds == null ? null
                : new UNet2DConditionModel.TextTimeInputs(embConcept.pooled(), timeIds);
        be.labelAllocations("saved activations");
        UNet2DConditionModel.Activations acts = unet.forward(be, trainable, z, new float[] {t}, embConcept.embeds(), added);
        Tensor en = acts.output();
        float loss = be.mseLoss(en, goal, n);
        be.labelAllocations("backward");
        Tensor dEn = be.zeros(z.shape());
        be.mseLossBackward(dEn, en, goal, n, 1f);
        unet.backward(be, trainable, gradients, acts, dEn, null, null);
        return new Result(e0, ep, en, goal, loss);
    }

    /** The same time ids for both samples of a batch-2 call. */
    static float[] twice(float[] timeIds) {
        float[] both = Arrays.copyOf(timeIds, 2 * timeIds.length);
        System.arraycopy(timeIds, 0, both, timeIds.length, timeIds.length);
        return both;
    }
}
