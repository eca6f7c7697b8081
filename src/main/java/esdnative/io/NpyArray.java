package esdnative.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An array read from a {@code .npy} file: its shape (C order), numpy dtype string ({@code <f4 <f8 <i8 <i4}) and
 * little-endian data, with converting getters.
 */
public final class NpyArray {
    private final int[] shape;
    private final String descr;
    private final ByteBuffer data;   // little-endian, exactly size() elements

    NpyArray(int[] shape, String descr, ByteBuffer data) {
        this.shape = shape.clone();
        this.descr = descr;
        this.data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The shape; empty for a 0-d array. */
    public int[] shape() { return shape.clone(); }

    /** The numpy dtype string, e.g. {@code <f4}. */
    public String descr() { return descr; }

    /** The element type. */
    public DType dtype() { return Npy.dtypeOf(descr); }

    /** Number of elements. */
    public int size() { return data.capacity() / dtype().bytes(); }

    /** The values as float32 (float64 rounded, integers by value). */
    public float[] floats() {
        float[] out = new float[size()];
        switch (dtype()) {
            case F32 -> data.asFloatBuffer().get(0, out);
            case F64 -> { for (int i = 0; i < out.length; i++) out[i] = (float) data.getDouble(8 * i); }
            case I64 -> { for (int i = 0; i < out.length; i++) out[i] = (float) data.getLong(8 * i); }
            case I32 -> { for (int i = 0; i < out.length; i++) out[i] = (float) data.getInt(4 * i); }
            default -> throw new IllegalStateException(descr);
        }
        return out;
    }

    /** The values as float64 (exact for every supported type except integers beyond 2^53). */
    public double[] doubles() {
        double[] out = new double[size()];
        switch (dtype()) {
            case F32 -> { for (int i = 0; i < out.length; i++) out[i] = data.getFloat(4 * i); }
            case F64 -> data.asDoubleBuffer().get(0, out);
            case I64 -> { for (int i = 0; i < out.length; i++) out[i] = (double) data.getLong(8 * i); }
            case I32 -> { for (int i = 0; i < out.length; i++) out[i] = data.getInt(4 * i); }
            default -> throw new IllegalStateException(descr);
        }
        return out;
    }

    /** The values as longs; floating values must be whole numbers (else IllegalStateException). */
    public long[] longs() {
        long[] out = new long[size()];
        switch (dtype()) {
            case I64 -> data.asLongBuffer().get(0, out);
            case I32 -> { for (int i = 0; i < out.length; i++) out[i] = data.getInt(4 * i); }
            case F32, F64 -> {
                double[] d = doubles();
                for (int i = 0; i < out.length; i++) {
                    out[i] = (long) d[i];
                    if (out[i] != d[i]) throw new IllegalStateException("element " + i + " = " + d[i] + " is not a whole number");
                }
            }
            default -> throw new IllegalStateException(descr);
        }
        return out;
    }

    @Override
    public String toString() { return "NpyArray[" + descr + " " + Arrays.toString(shape) + "]"; }
}
