package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUresult;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * A real GPU: the CUDA driver API through JCuda (context, stream, memory, PTX modules, launches) and cuBLAS
 * through the foreign function API. With {@code ESD_CUDA_SYNC=1} every launch and GEMM is waited for, so that a
 * kernel that faults is named.
 */
final class JCudaDevice implements Device {
    private final CudaContext context;
    private final CudaKernels kernels;
    private final Cublas cublas;
    private final boolean syncEveryCall;
    private final String description;
    /** base address → the JCuda pointer of each allocation, to turn an address inside it into a JCuda pointer */
    private final TreeMap<Long, DevicePointer> allocations = new TreeMap<>();
    private String op = "init";
    private long hostInteractions;

    /**
     * Opens device 0 ({@code ESD_CUDA_DEVICE} picks another): loads the driver and cuBLAS that {@code libraries}
     * finds, and the kernels' PTX.
     */
    JCudaDevice(CudaLibraries libraries) {
        syncEveryCall = "1".equals(System.getenv("ESD_CUDA_SYNC"));
        SymbolLookup driver = libraries.loadDriver();
        Cublas.Files cublasFiles = libraries.cublas();
        context = new CudaContext(deviceOrdinal());
        CudaKernels k = null;
        try {
            k = new CudaKernels(context, driver, syncEveryCall);
            cublas = new Cublas(cublasFiles, context.stream().handle());
        } catch (RuntimeException | Error e) {
            if (k != null) k.close();
            context.close();
            throw e;
        }
        kernels = k;
        String cudnn = libraries.find(CudaLibraries.CUDNN).map(p -> "cuDNN 9 present (unused)").orElse("no cuDNN");
        int v = cublas.version();
        description = String.format(Locale.ROOT, "%s; cuBLAS %d.%d.%d (%s); convolution im2col + cuBLAS; %s;"
                        + " JCuda native %s", context.describe(), v / 10000, v / 100 % 100, v % 100, cublasFiles.cublas(),
                cudnn, loadedFrom("libJCudaDriver"));
    }

    @Override
    public void operation(String op) { this.op = op; }

    @Override
    public void bind() { context.bind(); }

    @Override
    public long allocate(long bytes) {
        DevicePointer p = new DevicePointer();
        int result = JCudaDriver.cuMemAlloc(p, bytes);
        if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY) return 0;
        check(result, "cuMemAlloc of " + bytes + " bytes");
        allocations.put(p.address(), p);
        return p.address();
    }

    @Override
    public void free(long address) {
        DevicePointer p = allocations.remove(address);
        if (p == null) throw new IllegalArgumentException("no allocation at 0x" + Long.toHexString(address));
        check(JCudaDriver.cuMemFree(p), "cuMemFree");
    }

    @Override
    public void fill32(long address, int bits, long count) {
        check(JCudaDriver.cuMemsetD32Async(at(address), bits, count, context.stream()), "cuMemsetD32");
    }

    @Override
    public void upload(long dst, float[] src, int srcOffset, int count) {
        // in the stream's order (after queued kernels that may still read the destination), without waiting for
        // them: from pageable memory the driver stages the source before it returns
        hostInteractions++;
        check(JCudaDriver.cuMemcpyHtoDAsync(at(dst), Pointer.to(src).withByteOffset((long) srcOffset * Float.BYTES),
                (long) count * Float.BYTES, context.stream()), "cuMemcpyHtoDAsync");
    }

    @Override
    public void download(float[] dst, long src, int count) {
        synchronize();
        hostInteractions++;
        check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), at(src), (long) count * Float.BYTES), "cuMemcpyDtoH");
    }

    @Override
    public void copy(long dst, long src, long bytes) {
        check(JCudaDriver.cuMemcpyDtoDAsync(at(dst), at(src), bytes, context.stream()), "cuMemcpyDtoD");
    }

    @Override
    public void launch(Kernel kernel, Dim grid, Dim block, Object... args) {
        kernels.launch(op, kernel, grid, block, args);
    }

    @Override
    public void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32) {
        try {
            cublas.gemm(g, a, b, c, tf32);
        } catch (CudaException e) {
            throw new CudaException("cuda " + op + ": " + e.getMessage(), e);
        }
        if (syncEveryCall) context.synchronize("cuda " + op + ": cuBLAS GEMM " + g);
    }

    @Override
    public void gemmBf16(ColumnMajorGemm g, long a, long b, long c) {
        try {
            cublas.gemmBf16(g, a, b, c);
        } catch (CudaException e) {
            throw new CudaException("cuda " + op + ": " + e.getMessage(), e);
        }
        if (syncEveryCall) context.synchronize("cuda " + op + ": cuBLAS bf16 GEMM " + g);
    }

    @Override
    public void synchronize() {
        hostInteractions++;
        context.synchronize("cuda " + op);
    }

    @Override
    public long hostInteractions() { return hostInteractions; }

    /** Not with {@code ESD_CUDA_SYNC=1}: a wait after every launch cannot be recorded. */
    @Override
    public boolean capturesGraphs() { return !syncEveryCall; }

    /**
     * Relaxed capture: the caching allocator may call cuMemAlloc while capturing (the blocks stay the graph's);
     * it never frees then.
     */
    @Override
    public void beginCapture() {
        check(JCudaDriver.cuStreamBeginCapture(context.stream(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED),
                "cuStreamBeginCapture");
    }

    @Override
    public RecordedGraph endCapture() {
        CUgraph graph = new CUgraph();
        check(JCudaDriver.cuStreamEndCapture(context.stream(), graph), "cuStreamEndCapture");
        CUgraphExec exec = new CUgraphExec();
        int instantiated = JCudaDriver.cuGraphInstantiate(exec, graph, 0);
        if (instantiated != CUresult.CUDA_SUCCESS) {
            JCudaDriver.cuGraphDestroy(graph);
            check(instantiated, "cuGraphInstantiate");
        }
        return new RecordedGraph() {
            @Override
            public void launch() {
                check(JCudaDriver.cuGraphLaunch(exec, context.stream()), "cuGraphLaunch");
                if (syncEveryCall) context.synchronize("cuda " + op + ": graph launch");
            }

            @Override
            public void close() {
                check(JCudaDriver.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
                check(JCudaDriver.cuGraphDestroy(graph), "cuGraphDestroy");
            }
        };
    }

    @Override
    public long[] memoryInfo() { return context.memoryInfo(); }

    @Override
    public String describe() { return description; }

    @Override
    public void close() {
        context.bind();
        try {
            context.synchronize("cuda close");
        } finally {
            cublas.close();
            kernels.close();
            for (CUdeviceptr p : allocations.values()) JCudaDriver.cuMemFree(p);
            allocations.clear();
            context.close();
        }
    }

    /**
     * Where the process mapped the native library whose file name starts with {@code prefix} from (Linux's
     * /proc/self/maps), e.g. JCuda's: the runtime folder the device check carries, or a copy in java.io.tmpdir.
     */
    private static String loadedFrom(String prefix) {
        try (var maps = Files.lines(Path.of("/proc/self/maps"))) {
            return maps.map(line -> line.substring(line.lastIndexOf(' ') + 1))
                    .filter(path -> path.startsWith("/") && Path.of(path).getFileName().toString().startsWith(prefix))
                    .findFirst().orElse("(not found in /proc/self/maps)");
        } catch (IOException | UncheckedIOException e) {
            return "(unknown: " + e.getMessage() + ")";
        }
    }

    /** A JCuda pointer to an address inside one of our allocations. */
    private CUdeviceptr at(long address) {
        Map.Entry<Long, DevicePointer> e = allocations.floorEntry(address);
        if (e == null) throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not device memory");
        return e.getValue().withByteOffset(address - e.getKey());
    }

    private void check(int result, String what) {
        CudaContext.check(result, "cuda " + op + ": " + what);
    }

    private static int deviceOrdinal() {
        String env = System.getenv("ESD_CUDA_DEVICE");
        if (env == null || env.isBlank()) return 0;
        try {
            return Integer.parseInt(env.trim());
        } catch (NumberFormatException e) {
            throw new CudaException("ESD_CUDA_DEVICE must be a device number, got '" + env + "'");
        }
    }
}
