package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;
import esdnative.backend.cuda.CudaKernels.Ptr;
import esdnative.tensor.Tensor;
import jcuda.Pointer;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Host cost of one kernel launch (µs), on the project's fake driver in count-only mode (kernels/fake-driver: each
 * launch is checked against the device's limits and counted, nothing runs), so what is measured is the host side:
 * the backend's path ({@code ffm}: argument checks, the kernel's reused native parameter block, cuLaunchKernel
 * through the foreign function API) against JCuda's {@code cuLaunchKernel} with its Java array of pointers
 * packed per launch ({@code jcuda}), as the backend launched before, and the floor: the fake's own cuLaunchKernel
 * through FFM on a block written once ({@code driverOnly}). Kernels: axpy (4 arguments) and adam_step
 * (13). {@code backendOp} is the whole op as a model calls it ({@link CudaBackend#axpy} or
 * {@link CudaBackend#adamStep} on 1000 elements: checks, pointers, the launch), and {@code backendGemm} a
 * {@link CudaBackend#gemm} (64³: checks and the cuBLAS call through FFM). Run from the repository root after
 * {@code mvn package} (the fake driver is in target/fake-cuda, or $ESD_FAKE_CUDA).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class LaunchBenchmark {
    @Param({"axpy", "adam_step"})
    public String kernel;

    private JCudaDevice device;
    private Kernel which;
    private Object[] args;
    private CUmodule module;
    private Function function;
    private long buffer;
    private MethodHandle cuLaunchKernel;
    private MemorySegment fixedParameters;
    private CudaBackend backend;
    private Tensor x;
    private Tensor y;
    private Tensor z;
    private Tensor w;

    /** A JCuda function whose raw handle the FFM call takes. */
    private static final class Function extends CUfunction {
        MemorySegment handle() { return MemorySegment.ofAddress(getNativePointer()); }
    }

    @Setup(Level.Trial)
    @SuppressWarnings("restricted")
    public void open() throws Throwable {
        String env = System.getenv("ESD_FAKE_CUDA");
        Path folder = Path.of(env != null && !env.isBlank() ? env : "target/fake-cuda").toAbsolutePath();
        if (!Files.isRegularFile(folder.resolve(CudaLibraries.DRIVER))) {
            throw new IllegalStateException("no fake driver in " + folder + ": run mvn package first (needs g++)");
        }
        SymbolLookup fake = SymbolLookup.libraryLookup(folder.resolve(CudaLibraries.DRIVER), Arena.global());
        Linker.nativeLinker().downcallHandle(fake.find("esdfake_set_count_only").orElseThrow(),
                FunctionDescriptor.ofVoid(JAVA_INT)).invokeExact(1);
        device = new JCudaDevice(new CudaLibraries(List.of(folder)));
        buffer = device.allocate(1 << 20);
        Ptr p = new Ptr(buffer);
        which = kernel.equals("axpy") ? Kernel.AXPY : Kernel.ADAM_STEP;
        args = which == Kernel.AXPY ? new Object[] {p, 0.5f, p, 1000L}
                : new Object[] {p, p, p, p, 1000L, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.01f, -1e-3f, 0.5f};
        module = new CUmodule();
        JCudaDriver.cuModuleLoadData(module, Ptx.read(which.module).orElseThrow());
        function = new Function();
        JCudaDriver.cuModuleGetFunction(function, module, which.entry);
        cuLaunchKernel = Linker.nativeLinker().downcallHandle(fake.find("cuLaunchKernel").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        fixedParameters = new ParameterBlock(which, Arena.global()).write(args).pointers();
        if (jcuda() != 0 || driverOnly() != 0) throw new IllegalStateException("the fake driver refused the launch");
        ffm();
        backend = new CudaBackend(CudaBackend.MathMode.FP32, new CudaLibraries(List.of(folder)));
        x = backend.fromHost(new float[64 * 64], 64 * 64);
        y = backend.fromHost(new float[64 * 64], 64 * 64);
        z = backend.fromHost(new float[64 * 64], 64 * 64);
        w = backend.fromHost(new float[64 * 64], 64 * 64);
        backendOp();
        backendGemm();
    }

    /** The context is current per thread: JMH may measure on another thread than the one that set up. */
    @Setup(Level.Iteration)
    public void bind() {
        device.bind();
    }

    @TearDown(Level.Trial)
    public void close() {
        backend.close();
        JCudaDriver.cuModuleUnload(module);
        device.free(buffer);
        device.close();
    }

    @Benchmark
    public void ffm() {
        device.launch(which, Dim.of(4), Dim.of(256), args);
    }

    /** One backend op that launches {@code kernel}, as a model calls it. */
    @Benchmark
    public void backendOp() {
        if (which == Kernel.AXPY) backend.axpy(y, 0.5f, x, 1000);
        else backend.adamStep(x, y, z, w, 1000, 3, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    }

    /** One backend GEMM, 64 × 64 × 64: the backend's checks and cuBLAS through FFM. */
    @Benchmark
    public void backendGemm() {
        backend.gemm(false, false, 64, 64, 64, 1f, x, 64, 0, y, 64, 0, 0f, z, 64, 0, 1);
    }

    /** The floor: the fake driver's cuLaunchKernel through FFM on a parameter block written once (no arguments). */
    @Benchmark
    public int driverOnly() throws Throwable {
        return (int) cuLaunchKernel.invokeExact(function.handle(), 4, 1, 1, 256, 1, 1, 0, MemorySegment.NULL,
                fixedParameters, MemorySegment.NULL);
    }

    /** The backend's launch before: one Java array of pointers to one-element arrays, packed per launch. */
    @Benchmark
    public int jcuda() {
        Pointer[] values = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            values[i] = switch (args[i]) {
                case Ptr p -> Pointer.to(new long[] {p.address()});
                case Long v -> Pointer.to(new long[] {v});
                case Integer v -> Pointer.to(new int[] {v});
                case Float v -> Pointer.to(new float[] {v});
                default -> throw new IllegalArgumentException(String.valueOf(args[i]));
            };
        }
        return JCudaDriver.cuLaunchKernel(function, 4, 1, 1, 256, 1, 1, 0, null, Pointer.to(values), null);
    }
}
