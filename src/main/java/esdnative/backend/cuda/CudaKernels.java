package esdnative.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The backend's kernels: loads each PTX module from the jar (the driver JIT-compiles it for the GPU), checks every
 * {@link Kernel}'s parameter list against the PTX, and launches kernels on the backend's stream with checked
 * arguments. Launch errors are reported at once with the operation's name; with {@code ESD_CUDA_SYNC=1} every
 * launch is also waited for, so that a kernel that faults is named too.
 */
final class CudaKernels implements AutoCloseable {
    /** A device address as a kernel argument (pointers and 64-bit counts are both 8 bytes; this tells them apart). */
    record Ptr(long address) {
        static final Ptr NULL = new Ptr(0);
    }

    private final CudaContext context;
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);
    private final boolean syncEveryLaunch;

    CudaKernels(CudaContext context, boolean syncEveryLaunch) {
        this.context = context;
        this.syncEveryLaunch = syncEveryLaunch;
        Map<String, List<Kernel>> byModule = new LinkedHashMap<>();
        for (Kernel k : Kernel.values()) byModule.computeIfAbsent(k.module, m -> new ArrayList<>()).add(k);
        for (var e : byModule.entrySet()) {
            String ptx = Ptx.read(e.getKey()).orElseThrow(() -> new CudaException(
                    "kernel module " + e.getKey() + ".ptx is not in the jar (built without nvcc)"));
            Map<String, List<String>> entries = Ptx.entries(ptx);
            for (Kernel k : e.getValue()) Ptx.checkSignature(k, entries);
            CUmodule module = new CUmodule();
            CudaContext.check(JCudaDriver.cuModuleLoadData(module, ptx), "loading kernel module " + e.getKey() + ".ptx");
            modules.add(module);
            for (Kernel k : e.getValue()) {
                CUfunction f = new CUfunction();
                CudaContext.check(JCudaDriver.cuModuleGetFunction(f, module, k.entry), "finding kernel " + k.entry);
                functions.put(k, f);
            }
        }
    }

    /** Launches {@code kernel} on grid × block threads; {@code op} names the backend operation for errors. */
    void launch(String op, Kernel kernel, Dim grid, Dim block, Object... args) {
        Pointer params = pack(kernel, args);
        int result = JCudaDriver.cuLaunchKernel(functions.get(kernel), grid.x, grid.y, grid.z,
                block.x, block.y, block.z, 0, context.stream(), params, null);
        CudaContext.check(result, "cuda " + op + ": launching " + kernel.entry + " grid " + grid + " block " + block);
        if (syncEveryLaunch) {
            context.synchronize("cuda " + op + ": kernel " + kernel.entry);
        }
    }

    /** A launch shape. */
    record Dim(int x, int y, int z) {
        static Dim of(int x) { return new Dim(x, 1, 1); }

        static Dim of(int x, int y) { return new Dim(x, y, 1); }

        @Override
        public String toString() { return "(" + x + ", " + y + ", " + z + ")"; }
    }

    /**
     * The kernel-parameter array cuLaunchKernel takes: one pointer to each argument's value. Arguments must match
     * the kernel's parameter types exactly: {@link Ptr} (or null) for pointers, Long for 64-bit counts, Integer
     * for ints, Float for floats.
     */
    static Pointer pack(Kernel kernel, Object... args) {
        if (args.length != kernel.params.size()) {
            throw new IllegalArgumentException("kernel " + kernel.entry + " takes " + kernel.params.size()
                    + " arguments, got " + args.length);
        }
        Pointer[] values = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            values[i] = switch (kernel.params.get(i)) {
                case PTR -> a == null ? Pointer.to(new long[] {0})
                        : a instanceof Ptr p ? Pointer.to(new long[] {p.address()}) : mismatch(kernel, i, a);
                case I64 -> a instanceof Long v ? Pointer.to(new long[] {v}) : mismatch(kernel, i, a);
                case I32 -> a instanceof Integer v ? Pointer.to(new int[] {v}) : mismatch(kernel, i, a);
                case F32 -> a instanceof Float v ? Pointer.to(new float[] {v}) : mismatch(kernel, i, a);
            };
        }
        return Pointer.to(values);
    }

    private static Pointer mismatch(Kernel kernel, int index, Object arg) {
        throw new IllegalArgumentException("kernel " + kernel.entry + " argument " + index + " must be "
                + kernel.params.get(index) + ", got " + (arg == null ? "null" : arg.getClass().getSimpleName()));
    }

    @Override
    public void close() {
        for (CUmodule m : modules) JCudaDriver.cuModuleUnload(m);
        modules.clear();
        functions.clear();
    }
}
