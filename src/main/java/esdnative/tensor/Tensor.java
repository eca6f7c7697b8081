package esdnative.tensor;

import java.util.Arrays;

/**
 * A dense, row-major (C order) float32 tensor: a shape laid over a {@link Storage} from an element offset.
 * Tensors never own a copy of their data; {@link #view} and {@link #reshape} make new views of the same storage,
 * which is how flat parameter buffers get their named per-parameter tensors.
 */
public final class Tensor {
    private final Storage storage;
    private final long offset;
    private final int[] shape;
    private final long size;

    public Tensor(Storage storage, long offset, int... shape) {
        this.storage = storage;
        this.offset = offset;
        this.shape = shape.clone();
        this.size = sizeOf(shape);
        if (offset < 0 || offset + size > storage.capacity()) {
            throw new IllegalArgumentException("view " + Arrays.toString(shape) + " at offset " + offset
                    + " exceeds storage of " + storage.capacity() + " elements");
        }
    }

    public static long sizeOf(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n *= d;
        }
        return n;
    }

    public Storage storage() { return storage; }

    /** Element offset of this view's first element in its storage. */
    public long offset() { return offset; }

    public int[] shape() { return shape.clone(); }

    public int rank() { return shape.length; }

    /** Size of dimension {@code i}; negative {@code i} counts from the end. */
    public int dim(int i) { return shape[i < 0 ? shape.length + i : i]; }

    /** Number of elements. */
    public long size() { return size; }

    /** The same elements under another shape of equal size. */
    public Tensor reshape(int... newShape) {
        if (sizeOf(newShape) != size) {
            throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
        }
        return new Tensor(storage, offset, newShape);
    }

    /** A contiguous sub-view starting {@code elementOffset} elements into this tensor. */
    public Tensor view(long elementOffset, int... newShape) {
        if (elementOffset < 0 || elementOffset + sizeOf(newShape) > size) {
            throw new IllegalArgumentException("view " + Arrays.toString(newShape) + " at " + elementOffset
                    + " exceeds tensor " + Arrays.toString(shape));
        }
        return new Tensor(storage, offset + elementOffset, newShape);
    }

    /** The {@code i}-th slice along the first dimension, e.g. one sample of a batch. */
    public Tensor slice(int i) {
        int[] rest = Arrays.copyOfRange(shape, 1, shape.length);
        return view((long) i * sizeOf(rest), rest);
    }

    @Override
    public String toString() { return "Tensor" + Arrays.toString(shape); }
}
