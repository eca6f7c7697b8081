package esdnative.io;

import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header: its name, element type, shape, and byte range
 * [begin, end) relative to the start of the data section (the header's {@code data_offsets}).
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
    public TensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() { return shape.clone(); }

    /** Number of elements (1 for a scalar of shape []). */
    public long numel() {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    /** Size of the data in bytes (end - begin). */
    public long byteSize() { return end - begin; }

    /** The shape as ints, as {@code Tensor} wants it; fails if a dimension does not fit an int. */
    public int[] intShape() {
        int[] s = new int[shape.length];
        for (int i = 0; i < s.length; i++) s[i] = Math.toIntExact(shape[i]);
        return s;
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape);
    }
}
