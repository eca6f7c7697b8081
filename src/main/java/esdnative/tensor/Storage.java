package esdnative.tensor;

/** A backend's block of float32 memory that tensors view. The CPU backend's is a {@code float[]}. */
public interface Storage {
    /** Number of float32 elements this storage holds. */
    long capacity();
}
