package esdnative.backend.cpu;

import esdnative.tensor.Storage;
import esdnative.tensor.Tensor;

/** The CPU backend's memory: one Java {@code float[]}. */
public final class CpuStorage implements Storage {
    /** largest array the JVM reliably allocates */
    static final int MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    private final float[] data;

    public CpuStorage(float[] data) {
        this.data = data;
    }

    @Override
    public long capacity() { return data.length; }

    /** The array behind a CPU tensor; fails clearly when the tensor lives on another backend. */
    public static float[] array(Tensor t) {
        if (!(t.storage() instanceof CpuStorage s)) {
            throw new IllegalArgumentException(t + " is not a CPU tensor (storage " + t.storage().getClass().getSimpleName() + ")");
        }
        return s.data;
    }

    /** The tensor's first element's index in its array. */
    public static int offset(Tensor t) {
        return (int) t.offset();
    }
}
