package esdnative.backend;

import esdnative.tensor.Tensor;

/** Stacking single samples into a batch: [1, ...] tensors → [k, ...]. */
public final class Batch {
    private Batch() {}

    public static Tensor stack(Backend be, Tensor... samples) {
        int[] shape = samples[0].shape();
        shape[0] = 0;
        for (Tensor s : samples) shape[0] += s.dim(0);
        Tensor out = be.zeros(shape);
        long offset = 0;
        for (Tensor s : samples) {
            be.copy(out.view(offset, s.shape()), s);
            offset += s.size();
        }
        return out;
    }
}
