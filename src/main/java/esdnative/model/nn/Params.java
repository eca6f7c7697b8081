package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

/** Small helpers shared by the layers. */
public final class Params {
    private Params() {}

    /** The gradient tensor for a parameter, or null when no gradients are wanted or this one is absent. */
    public static Tensor grad(Weights grads, String name) {
        return grads == null ? null : grads.find(name);
    }

    /** A new tensor holding a copy of {@code src}, under {@code src}'s shape. */
    public static Tensor copyOf(Backend be, Tensor src) {
        Tensor t = be.zeros(src.shape());
        be.copy(t, src);
        return t;
    }
}
