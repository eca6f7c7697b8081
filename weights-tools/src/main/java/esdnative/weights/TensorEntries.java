package esdnative.weights;

import esdnative.cli.UserError;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.io.TensorSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A tensor of any source as a safetensors entry to write. Kept dtypes are lossless: a safetensors tensor is a
 * zero-copy view of its bytes; a checkpoint's float16/bfloat16/float32 tensor goes through float32, which holds
 * each of them exactly; integer tensors are exact up to 2^24.
 */
public final class TensorEntries {
    private TensorEntries() {}

    /**
     * @param shape  the shape to write (a reshape of the stored one)
     * @param target the dtype to write floating tensors in, or null to keep the stored one; integer tensors keep theirs
     */
    public static Entry of(TensorSource file, String name, long[] shape, DType target) {
        DType from = file.dtype(name);
        DType to = target == null || !from.isFloating() ? from : target;
        if (to == from && file instanceof SafetensorsFile f) return Entry.raw(from, shape, f.raw(name));
        if (to == DType.F64 && from == DType.F64) {
            throw new UserError(file.path() + ": " + name + " is float64, which this tool cannot copy losslessly from a checkpoint");
        }
        float[] values = file.readFloats(name);
        if (to.isFloating()) return Entry.floats(to, shape, values);
        ByteBuffer b = ByteBuffer.allocate(values.length * to.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            if (Math.abs(v) >= 0x1p24f) throw new UserError(file.path() + ": integer tensor " + name + " has values too large to convert");
            if (to == DType.I64) b.putLong((long) v); else b.putInt((int) v);
        }
        return Entry.raw(to, shape, MemorySegment.ofArray(b.array()));
    }
}
