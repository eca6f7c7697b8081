package esdnative.backend.cuda;

import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The backend's kernels: loads each PTX module from the jar through JCuda (the driver JIT-compiles it for the
 * GPU), checks every {@link Kernel}'s parameter list against the PTX, and launches kernels on the backend's stream
 * with checked arguments. Launches call cuLaunchKernel through the foreign function API with one reused native
 * {@link ParameterBlock} per kernel (JCuda packs a Java array of pointers per launch: 5–14 µs). Launch errors are
 * reported at once with the operation's name; with {@code ESD_CUDA_SYNC=1} every launch is also waited for, so
 * that a kernel that faults is named too.
 */
final class CudaKernels implements AutoCloseable {
    /** A device address as a kernel argument (pointers and 64-bit counts are both 8 bytes; this tells them apart). */
    record Ptr(long address) {
        static final Ptr NULL = new Ptr(0);
    }

    /** A JCuda function whose raw handle we can read, to launch it through the foreign function API. */
    private static final class Function extends CUfunction {
        MemorySegment handle() {
            return MemorySegment.ofAddress(getNativePointer());
        }
    }

    private final CudaContext context;
    private final List<CUmodule> modules = new ArrayList<>();
    /**
     * CUresult cuLaunchKernel(CUfunction f, unsigned gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
     * unsigned sharedMemBytes, CUstream hStream, void** kernelParams, void** extra), called at the address passed
     * first: a constant handle, which the JIT inlines (one bound to the symbol would sit in a field it cannot fold)
     */
    @SuppressWarnings("restricted")
    private static final MethodHandle CU_LAUNCH_KERNEL = Linker.nativeLinker().downcallHandle(FunctionDescriptor.of(
            JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
            ADDRESS));

    /** each kernel's function handle and parameter block, by ordinal: no lookup per launch */
    private final MemorySegment[] functions = new MemorySegment[Kernel.values().length];
    private final ParameterBlock[] parameters = new ParameterBlock[Kernel.values().length];
    private final Arena arena = Arena.ofShared(); // the backend may be used from another thread than it was opened on
    private final MemorySegment cuLaunchKernel;
    private final MemorySegment stream;
    private final boolean syncEveryLaunch;

    /** {@code driver}: the loaded libcuda.so.1, whose cuLaunchKernel the launches call. */
    @SuppressWarnings("restricted")
    CudaKernels(CudaContext context, SymbolLookup driver, boolean syncEveryLaunch) {
        this.context = context;
        this.syncEveryLaunch = syncEveryLaunch;
        this.stream = MemorySegment.ofAddress(context.stream().handle());
        cuLaunchKernel = driver.find("cuLaunchKernel").orElseThrow(
                () -> new CudaException("the driver library has no cuLaunchKernel"));
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
                Function f = new Function();
                CudaContext.check(JCudaDriver.cuModuleGetFunction(f, module, k.entry), "finding kernel " + k.entry);
                functions[k.ordinal()] = f.handle();
                parameters[k.ordinal()] = new ParameterBlock(k, arena);
            }
        }
    }

    /** Launches {@code kernel} on grid × block threads; {@code op} names the backend operation for errors. */
    void launch(String op, Kernel kernel, Dim grid, Dim block, Object... args) {
        MemorySegment params = parameters[kernel.ordinal()].write(args).pointers();
        int result;
        try {
            result = (int) CU_LAUNCH_KERNEL.invokeExact(cuLaunchKernel, functions[kernel.ordinal()], grid.x, grid.y,
                    grid.z, block.x, block.y, block.z, 0, stream, params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw new CudaException("cuda " + op + ": cuLaunchKernel failed to run: " + t, t);
        }
        if (result != CUresult.CUDA_SUCCESS) { // the message only on failure: building it costs more than the launch
            CudaContext.check(result, "cuda " + op + ": launching " + kernel.entry + " grid " + grid
                    + " block " + block);
        }
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

    @Override
    public void close() {
        for (CUmodule m : modules) JCudaDriver.cuModuleUnload(m);
        modules.clear();
        Arrays.fill(functions, null);
        Arrays.fill(parameters, null);
        arena.close();
    }
}
