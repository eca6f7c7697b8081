package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.model.Weights;

import java.util.LinkedHashMap;
import java.util.SequencedMap;
import java.util.function.Predicate;

/**
 * The part of the UNet that ESD trains. The frozen model keeps every tensor; the trainable model shares all of them
 * except the selected ones, whose copies live in flat buffers (with twin buffers for their gradients), so only
 * the trained subset is held twice.
 */
public final class TrainableSubset {
    private final Weights trained;    // copies of the selected tensors, in flat buffers
    private final Weights gradients;  // same names and layout
    private final Weights trainable;  // frozen weights with the trained copies swapped in

    private TrainableSubset(Weights trained, Weights gradients, Weights trainable) {
        this.trained = trained;
        this.gradients = gradients;
        this.trainable = trainable;
    }

    /** Copies the tensors whose (diffusers) names {@code selected} accepts. */
    public static TrainableSubset select(Backend be, Weights frozen, Predicate<String> selected) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        frozen.asMap().forEach((name, t) -> {
            if (selected.test(name)) shapes.put(name, t.shape());
        });
        if (shapes.isEmpty()) throw new UserError("the selection holds no parameter of this UNet");
        Weights trained = Weights.allocate(be, shapes);
        trained.asMap().forEach((name, copy) -> be.copy(copy, frozen.get(name)));
        Weights gradients = Weights.allocate(be, shapes);
        return new TrainableSubset(trained, gradients, frozen.withReplaced(trained.asMap()));
    }

    /** The trainable model's weights: the frozen ones with the trained copies in place. */
    public Weights trainable() { return trainable; }

    /** The trained copies alone, in flat buffers. */
    public Weights trained() { return trained; }

    /** Gradients of the trained tensors, in buffers of the same layout. */
    public Weights gradients() { return gradients; }

    public void zeroGradients(Backend be) {
        gradients.fill(be, 0f);
    }

    public long parameterCount() { return trained.elementCount(); }
}
