package esdnative.uce;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.esd.TrainableSubset;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.Arrays;

/**
 * Applies UCE to a UNet: every cross-attention key and value projection ({@code …attn2.to_k.weight},
 * {@code …attn2.to_v.weight}) is replaced by the closed form computed from its original weight.
 */
public final class UceEdit {
    private UceEdit() {}

    /**
     * What an edit produced.
     *
     * @param edited      the UNet's weights with the edited copies in place ({@link TrainableSubset#trained()}: the
     *                    edited tensors alone, which EsdOutput writes)
     * @param textSeconds time in the text encoder; solveSeconds: summing, solving and applying the closed form
     */
    public record Result(TrainableSubset edited, EditTerms terms, ClosedForm closedForm, double textSeconds,
                         double solveSeconds) {}

    /** The authors' module choice: names containing attn2 whose module ends in to_k or to_v. */
    public static boolean isEdited(String parameterName) {
        return parameterName.contains("attn2")
                && (parameterName.endsWith(".to_k.weight") || parameterName.endsWith(".to_v.weight"));
    }

    /** Edits {@code unet} (left as it was) for {@code settings}; the concept vectors come from {@code encoder}. */
    public static Result apply(Backend be, ConceptEncoder encoder, Weights unet, UceSettings settings) {
        if (unet.asMap().keySet().stream().noneMatch(UceEdit::isEdited)) {
            throw new UserError("the UNet has no cross-attention (attn2) to_k/to_v weights to edit");
        }
        for (var e : unet.asMap().entrySet()) {
            int[] shape = e.getValue().shape();
            if (isEdited(e.getKey()) && (shape.length != 2 || shape[1] != encoder.dim())) {
                throw new UserError(e.getKey() + " has shape " + Arrays.toString(shape) + ": it does not read the "
                        + encoder.dim() + "-wide text encoder states this edit uses");
            }
        }
        long start = System.nanoTime();
        EditTerms terms = EditTerms.of(encoder, settings);
        long encoded = System.nanoTime();
        ClosedForm form = ClosedForm.solve(terms);
        TrainableSubset subset = TrainableSubset.select(be, unet, UceEdit::isEdited);
        for (var e : subset.trained().asMap().entrySet()) {
            Tensor copy = e.getValue();
            be.copyFromHost(copy, form.apply(be.toHost(unet.get(e.getKey())), copy.dim(0)), 0);
        }
        long done = System.nanoTime();
        return new Result(subset, terms, form, (encoded - start) / 1e9, (done - encoded) / 1e9);
    }
}
