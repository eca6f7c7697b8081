package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A {@link Device} without a GPU: host memory stands in for device memory (filled with a NaN pattern when
 * allocated, as device memory holds garbage), kernels are the real CUDA sources run by the CPU emulator
 * (kernels/emulation, loaded through the foreign function API), and GEMMs are cuBLAS's column-major definition
 * in plain float32 loops. With it the whole {@link CudaBackend} — launch shapes, strides, pointer offsets,
 * workspaces, the cuBLAS argument mapping — runs against the CPU reference on any machine.
 */
final class EmulatedDevice implements Device {
    private static final int GARBAGE = 0x7fc0beef;

    private final MethodHandle launch;
    private final Map<Long, Arena> allocations = new HashMap<>();

    EmulatedDevice(Path library) {
        SymbolLookup lib = SymbolLookup.libraryLookup(library, Arena.global());
        launch = Linker.nativeLinker().downcallHandle(lib.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        ADDRESS));
    }

    @Override
    public void operation(String op) {}

    @Override
    public void bind() {}

    @Override
    public long allocate(long bytes) {
        Arena arena = Arena.ofShared();
        MemorySegment s = arena.allocate(bytes, 256);
        int[] garbage = new int[(int) Math.min(bytes / 4, 1 << 16)];
        Arrays.fill(garbage, GARBAGE);
        for (long at = 0; at + 4 <= bytes; at += garbage.length * 4L) {
            MemorySegment.copy(garbage, 0, s, JAVA_INT, at, (int) Math.min(garbage.length, (bytes - at) / 4));
        }
        allocations.put(s.address(), arena);
        return s.address();
    }

    @Override
    public void free(long address) {
        Arena a = allocations.remove(address);
        if (a == null) throw new IllegalArgumentException("no allocation at " + address);
        a.close();
    }

    @Override
    public void fill32(long address, int bits, long count) {
        int[] pattern = new int[(int) Math.min(count, 1 << 16)];
        Arrays.fill(pattern, bits);
        MemorySegment s = at(address, count * 4);
        for (long i = 0; i < count; i += pattern.length) {
            MemorySegment.copy(pattern, 0, s, JAVA_INT, i * 4, (int) Math.min(pattern.length, count - i));
        }
    }

    @Override
    public void upload(long dst, float[] src, int srcOffset, int count) {
        MemorySegment.copy(src, srcOffset, at(dst, count * 4L), JAVA_FLOAT, 0, count);
    }

    @Override
    public void download(float[] dst, long src, int count) {
        MemorySegment.copy(at(src, count * 4L), JAVA_FLOAT, 0, dst, 0, count);
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        MemorySegment.copy(at(src, bytes), 0, at(dst, bytes), 0, bytes);
    }

    @Override
    public void launch(Kernel kernel, Dim grid, Dim block, Object... args) {
        try (Arena arena = Arena.ofConfined()) {
            // the same parameter block, with the same argument checks, as a launch on the GPU
            MemorySegment params = new ParameterBlock(kernel, arena).write(args).pointers();
            int result = (int) launch.invokeExact(arena.allocateFrom(kernel.entry), grid.x(), grid.y(), grid.z(),
                    block.x(), block.y(), block.z(), params);
            if (result != 0) throw new CudaException("the emulator has no kernel " + kernel.entry);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("emulated launch of " + kernel.entry + " failed: " + t, t);
        }
    }

    /**
     * cuBLAS's column-major GEMM, element (i, j) of X at X[i + j·ld], on host copies of the spans involved; always
     * strict float32 (the emulated backend runs in FP32 mode).
     */
    @Override
    public void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32) {
        multiply(g, read(a, spanA(g)), read(b, spanB(g)), c);
    }

    /** {@link #gemm} on bfloat16 A and B: each element read as the float32 it stands for (its bits shifted up). */
    @Override
    public void gemmBf16(ColumnMajorGemm g, long a, long b, long c) {
        multiply(g, readBf16(a, spanA(g)), readBf16(b, spanB(g)), c);
    }

    private static long spanA(ColumnMajorGemm g) {
        boolean ta = g.opA() == ColumnMajorGemm.OP_T;
        return (g.batch() - 1) * g.strideA() + (ta ? (long) (g.m() - 1) * g.lda() + g.k()
                : (long) (g.k() - 1) * g.lda() + g.m());
    }

    private static long spanB(ColumnMajorGemm g) {
        boolean tb = g.opB() == ColumnMajorGemm.OP_T;
        return (g.batch() - 1) * g.strideB() + (tb ? (long) (g.k() - 1) * g.ldb() + g.n()
                : (long) (g.n() - 1) * g.ldb() + g.k());
    }

    private static void multiply(ColumnMajorGemm g, float[] av, float[] bv, long c) {
        boolean ta = g.opA() == ColumnMajorGemm.OP_T, tb = g.opB() == ColumnMajorGemm.OP_T;
        float[] cv = read(c, (g.batch() - 1) * g.strideC() + (long) (g.n() - 1) * g.ldc() + g.m());
        for (int p = 0; p < g.batch(); p++) {
            int aOff = (int) (p * g.strideA()), bOff = (int) (p * g.strideB()), cOff = (int) (p * g.strideC());
            for (int j = 0; j < g.n(); j++) {
                for (int i = 0; i < g.m(); i++) {
                    float sum = 0;
                    for (int l = 0; l < g.k(); l++) {
                        float x = av[aOff + (ta ? l + i * g.lda() : i + l * g.lda())];
                        float y = bv[bOff + (tb ? j + l * g.ldb() : l + j * g.ldb())];
                        sum += x * y;
                    }
                    int ci = cOff + i + j * g.ldc();
                    // beta = 0 ignores C's old value (it may be garbage), as cuBLAS does
                    cv[ci] = g.alpha() * sum + (g.beta() == 0 ? 0 : g.beta() * cv[ci]);
                }
            }
        }
        MemorySegment.copy(cv, 0, at(c, cv.length * 4L), JAVA_FLOAT, 0, cv.length);
    }

    private static float[] readBf16(long address, long elements) {
        short[] bits = new short[Math.toIntExact(elements)];
        MemorySegment.copy(at(address, elements * 2), JAVA_SHORT, 0, bits, 0, bits.length);
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) out[i] = Float.intBitsToFloat((bits[i] & 0xffff) << 16);
        return out;
    }

    private static float[] read(long address, long elements) {
        float[] out = new float[Math.toIntExact(elements)];
        MemorySegment.copy(at(address, elements * 4), JAVA_FLOAT, 0, out, 0, out.length);
        return out;
    }

    @Override
    public void synchronize() {}

    @Override
    public long[] memoryInfo() { return new long[] {0, 0}; }

    @Override
    public String describe() { return "emulated device (kernels on the CPU emulator)"; }

    @Override
    public void close() {
        for (Arena a : allocations.values()) a.close();
        allocations.clear();
    }

    private static MemorySegment at(long address, long bytes) {
        return MemorySegment.ofAddress(address).reinterpret(bytes);
    }
}
