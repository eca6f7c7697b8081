package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Ptr;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One kernel's {@code kernelParams} for cuLaunchKernel in native memory, made once and rewritten for every launch:
 * an 8-byte value slot per parameter and the array of pointers to the slots. Arguments must match the kernel's
 * parameter types exactly: {@link Ptr} (or null) for pointers, Long for 64-bit counts, Integer for ints, Float
 * for floats. Not thread-safe (nor is the backend).
 */
final class ParameterBlock {
    private final Kernel kernel;
    /** the kernel's parameter types, as an array: read on every launch */
    private final Kernel.Param[] types;
    private final MemorySegment values;
    private final MemorySegment pointers;

    ParameterBlock(Kernel kernel, Arena arena) {
        this.kernel = kernel;
        this.types = kernel.params.toArray(Kernel.Param[]::new);
        int count = types.length;
        values = arena.allocate(JAVA_LONG, Math.max(1, count));
        pointers = arena.allocate(ADDRESS, Math.max(1, count));
        for (int i = 0; i < count; i++) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
    }

    /** Checks {@code args} against the kernel's parameters and writes them into the value slots. */
    ParameterBlock write(Object... args) {
        if (args.length != types.length) {
            throw new IllegalArgumentException("kernel " + kernel.entry + " takes " + types.length
                    + " arguments, got " + args.length);
        }
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            long at = 8L * i;
            switch (types[i]) {
                case PTR -> {
                    if (a == null) values.set(JAVA_LONG, at, 0);
                    else if (a instanceof Ptr p) values.set(JAVA_LONG, at, p.address());
                    else throw mismatch(i, a);
                }
                case I64 -> values.set(JAVA_LONG, at, a instanceof Long v ? v : throwMismatch(i, a));
                case I32 -> values.set(JAVA_INT, at, a instanceof Integer v ? v : throwMismatch(i, a));
                case F32 -> values.set(JAVA_FLOAT, at, a instanceof Float v ? v : throwMismatch(i, a));
            }
        }
        return this;
    }

    /** The kernelParams array: one pointer to each argument's value. */
    MemorySegment pointers() { return pointers; }

    private int throwMismatch(int index, Object arg) {
        throw mismatch(index, arg);
    }

    private IllegalArgumentException mismatch(int index, Object arg) {
        return new IllegalArgumentException("kernel " + kernel.entry + " argument " + index + " must be "
                + kernel.params.get(index) + ", got " + (arg == null ? "null" : arg.getClass().getSimpleName()));
    }
}
