package esdnative.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLAS through Java's foreign function API (JCublas cannot load next to CUDA 13's libcublas.so.13).
 * Only what the backend needs: a handle on the backend's stream, and GEMMs (plain and strided-batched) with float32
 * output and accumulation: on float32 inputs with either TF32 tensor-core math or strict float32 (the compute type of
 * the call), or on bfloat16 inputs.
 *
 * <p>cuBLAS is column-major; callers pass column-major arguments. {@link ColumnMajorGemm} maps the backend's
 * row-major GEMM onto them.
 */
final class Cublas implements AutoCloseable {
    /** cuBLAS and, when found beside it, the cuBLASLt it links to (paths, or names for the system loader). */
    record Files(String cublas, String cublasLt) {}

    // cublas_api.h / library_types.h
    private static final int CUBLAS_STATUS_SUCCESS = 0;
    private static final int CUDA_R_32F = 0;
    private static final int CUDA_R_16BF = 14;
    private static final int CUBLAS_COMPUTE_32F = 68;
    private static final int CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
    private static final int CUBLAS_GEMM_DEFAULT = -1;
    private static final int CUBLAS_DEFAULT_MATH = 0;

    // the GEMMs are called at the symbol's address passed first: constant handles, which the JIT inlines (handles
    // bound to the symbols would sit in fields it cannot fold)
    /**
     * cublasGemmEx(handle, transa, transb, m, n, k, *alpha, A, Atype, lda, B, Btype, ldb, *beta, C, Ctype, ldc,
     * computeType, algo)
     */
    @SuppressWarnings("restricted")
    private static final MethodHandle GEMM_EX = Linker.nativeLinker().downcallHandle(FunctionDescriptor.of(JAVA_INT,
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    /**
     * cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, *alpha, A, Atype, lda, strideA(long long),
     * B, Btype, ldb, strideB, *beta, C, Ctype, ldc, strideC, batchCount, computeType, algo)
     */
    @SuppressWarnings("restricted")
    private static final MethodHandle GEMM_STRIDED_BATCHED_EX = Linker.nativeLinker().downcallHandle(
            FunctionDescriptor.of(JAVA_INT,
                    ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                    ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT));

    private final MethodHandle destroy;
    private final MemorySegment gemmEx;
    private final MemorySegment gemmStridedBatchedEx;
    private final Arena arena = Arena.ofShared(); // the backend may be used from another thread than it was opened on
    private final MemorySegment handle;
    private final MemorySegment alpha;
    private final MemorySegment beta;
    private final int version;

    /**
     * Loads cuBLAS, creates a handle bound to {@code stream} (a CUstream's address; the CUDA context must be current).
     */
    @SuppressWarnings("restricted") // native access is what this class is for; the jar enables it
    Cublas(Files files, long stream) {
        Linker linker = Linker.nativeLinker();
        // load cuBLASLt by its path first, so that cuBLAS finds it even when the folder is not on the loader's path
        if (files.cublasLt() != null) SymbolLookup.libraryLookup(files.cublasLt(), Arena.global());
        SymbolLookup lib = SymbolLookup.libraryLookup(files.cublas(), Arena.global());

        MethodHandle create = downcall(linker, lib, "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        MethodHandle setStream = downcall(linker, lib, "cublasSetStream_v2",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle setMathMode = downcall(linker, lib, "cublasSetMathMode",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        MethodHandle getVersion = downcall(linker, lib, "cublasGetVersion_v2",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        destroy = downcall(linker, lib, "cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        gemmEx = symbol(lib, "cublasGemmEx");
        gemmStridedBatchedEx = symbol(lib, "cublasGemmStridedBatchedEx");

        MemorySegment handleOut = arena.allocate(ADDRESS);
        check(invokeInt(create, handleOut), "cublasCreate");
        handle = handleOut.get(ADDRESS, 0);
        check(invokeInt(setStream, handle, MemorySegment.ofAddress(stream)), "cublasSetStream");
        // TF32 is chosen per call through the compute type; the handle's own math mode stays the default
        check(invokeInt(setMathMode, handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
        MemorySegment versionOut = arena.allocate(JAVA_INT);
        check(invokeInt(getVersion, handle, versionOut), "cublasGetVersion");
        version = versionOut.get(JAVA_INT, 0);
        alpha = arena.allocate(JAVA_FLOAT);
        beta = arena.allocate(JAVA_FLOAT);
    }

    /** cuBLAS's version number, e.g. 130100 for 13.1.0. */
    int version() { return version; }

    /**
     * A column-major float32 GEMM on device addresses; batch > 1 uses the strided-batched call.
     *
     * @param tf32 TF32 tensor-core products (float32 accumulation); false: strict float32
     */
    void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32) {
        gemm(g, a, b, c, CUDA_R_32F, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
    }

    /**
     * {@link #gemm} on bfloat16 A and B (CUDA_R_16BF): their products (exact in float32) summed in float32 into a
     * float32 C — tensor cores at twice TF32's rate.
     */
    void gemmBf16(ColumnMajorGemm g, long a, long b, long c) {
        gemm(g, a, b, c, CUDA_R_16BF, CUBLAS_COMPUTE_32F);
    }

    private void gemm(ColumnMajorGemm g, long a, long b, long c, int inputType, int computeType) {
        alpha.set(JAVA_FLOAT, 0, g.alpha());
        beta.set(JAVA_FLOAT, 0, g.beta());
        int status;
        // invokeExact with the descriptor's exact types: invokeWithArguments would box and spread 19-23 arguments
        // and adapt the handle on every call (several µs; the backend issues thousands of GEMMs per iteration)
        try {
            if (g.batch() == 1) {
                status = (int) GEMM_EX.invokeExact(gemmEx, handle, g.opA(), g.opB(), g.m(), g.n(), g.k(),
                        alpha, MemorySegment.ofAddress(a), inputType, g.lda(),
                        MemorySegment.ofAddress(b), inputType, g.ldb(),
                        beta, MemorySegment.ofAddress(c), CUDA_R_32F, g.ldc(), computeType, CUBLAS_GEMM_DEFAULT);
            } else {
                status = (int) GEMM_STRIDED_BATCHED_EX.invokeExact(gemmStridedBatchedEx, handle, g.opA(), g.opB(),
                        g.m(), g.n(), g.k(),
                        alpha, MemorySegment.ofAddress(a), inputType, g.lda(), g.strideA(),
                        MemorySegment.ofAddress(b), inputType, g.ldb(), g.strideB(),
                        beta, MemorySegment.ofAddress(c), CUDA_R_32F, g.ldc(), g.strideC(),
                        g.batch(), computeType, CUBLAS_GEMM_DEFAULT);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuBLAS call failed: " + t, t);
        }
        if (status != CUBLAS_STATUS_SUCCESS) {
            throw new CudaException("cuBLAS GEMM " + g + " failed: " + statusName(status));
        }
    }

    @Override
    public void close() {
        try {
            check(invokeInt(destroy, handle), "cublasDestroy");
        } finally {
            arena.close();
        }
    }

    @SuppressWarnings("restricted")
    private static MethodHandle downcall(Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
        return linker.downcallHandle(symbol(lib, name), fd);
    }

    private static MemorySegment symbol(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new CudaException("cuBLAS has no symbol " + name));
    }

    private static int invokeInt(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuBLAS call failed: " + t, t);
        }
    }

    private static void check(int status, String what) {
        if (status != CUBLAS_STATUS_SUCCESS) throw new CudaException(what + " failed: " + statusName(status));
    }

    /** cublasStatus_t names (cublas_api.h). */
    static String statusName(int status) {
        return switch (status) {
            case 0 -> "CUBLAS_STATUS_SUCCESS";
            case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
            case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
            case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
            case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
            case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
            case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
            default -> "cublasStatus " + status;
        };
    }
}
