package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.tensor.Tensor;

/**
 * The ESD objective at one (z, t) (ESD-SPEC.md): the frozen model gives e0 = ε*(z, t, emb("")) and
 * ep = ε*(z, t, emb(c)) in one batch-2 forward; the trainable model gives en = ε_θ(z, t, emb(c));
 * loss = mean((en − (e0 − η (ep − e0)))²). {@link #compute} also accumulates dloss/dθ into the trainable gradients.
 */
public final class EsdLoss {
    private EsdLoss() {}

    /** e0, ep, en as [1, c, h, w]; the target e0 − η(ep − e0); the loss. */
    public record Result(Tensor e0, Tensor ep, Tensor en, Tensor target, float loss) {}

    /**
     * @param z           latents [1, c, h, w]
     * @param t           the training timestep (t_ddpm)
     * @param embNull     context of the empty prompt [1, tokens, dim]
     * @param embConcept  context of the concept [1, tokens, dim]
     * @param gradients   where dloss/dθ accumulates (only the tensors it holds are computed)
     */
    public static Result compute(Backend be, UNet2DConditionModel unet, Weights frozen, Weights trainable,
                                 Weights gradients, Tensor z, int t, Tensor embNull, Tensor embConcept, float eta) {
        // frozen model, batch 2: [z, z] with [emb(""), emb(c)]
        Tensor zz = Batch.stack(be, z, z);
        Tensor contexts = Batch.stack(be, embNull, embConcept);
        Tensor frozenOut = unet.predict(be, frozen, zz, new float[] {t, t}, contexts);
        Tensor e0 = frozenOut.view(0, z.shape());
        Tensor ep = frozenOut.view(z.size(), z.shape());
        return withFrozenPredictions(be, unet, trainable, gradients, z, t, e0, ep, embConcept, eta);
    }

    /**
     * The trainable half of {@link #compute}, given the frozen model's e0 and ep at (z, t) [1, c, h, w] (reused
     * from the guided sampling step that visited (z, t) with the same batch layout, or computed by compute).
     */
    public static Result withFrozenPredictions(Backend be, UNet2DConditionModel unet, Weights trainable,
                                               Weights gradients, Tensor z, int t, Tensor e0, Tensor ep,
                                               Tensor embConcept, float eta) {
        long n = z.size();
        Tensor target = be.zeros(z.shape());
        be.linearCombination(target, 1 + eta, e0, -eta, ep, n); // e0 − η (ep − e0)

        UNet2DConditionModel.Activations acts = unet.forward(be, trainable, z, new float[] {t}, embConcept);
        Tensor en = acts.output();
        float loss = be.mseLoss(en, target, n);
        Tensor dEn = be.zeros(z.shape());
        be.mseLossBackward(dEn, en, target, n, 1f);
        unet.backward(be, trainable, gradients, acts, dEn, null, null);
        return new Result(e0, ep, en, target, loss);
    }
}
