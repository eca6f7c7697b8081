package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;

/**
 * What {@link CudaBackend} needs from a GPU, addressed by raw device addresses: memory, copies, kernel launches
 * and column-major GEMMs, all executed in one stream's order. {@link JCudaDevice} is the GPU (JCuda driver API and
 * cuBLAS); the tests also run the backend on an emulated device. Failures throw {@link CudaException} naming the
 * operation set by {@link #operation}.
 */
interface Device extends AutoCloseable {
    /** Names the backend operation being run, for error messages. */
    void operation(String op);

    /** Makes the device current on the calling thread. */
    void bind();

    /** {@code bytes} of device memory, or 0 when the device is out of memory. */
    long allocate(long bytes);

    void free(long address);

    /** Sets {@code count} 32-bit words from {@code address} to {@code bits}. */
    void fill32(long address, int bits, long count);

    /** Copies {@code count} floats from {@code src[srcOffset..]} to the device (after queued work). */
    void upload(long dst, float[] src, int srcOffset, int count);

    /** Copies {@code count} floats from the device into {@code dst[0..]} (after queued work). */
    void download(float[] dst, long src, int count);

    void copy(long dst, long src, long bytes);

    void launch(Kernel kernel, Dim grid, Dim block, Object... args);

    /** C = alpha op(A) op(B) + beta C, column-major, at device addresses a, b, c; TF32 products or strict float32. */
    void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32);

    /** {@link #gemm} with bfloat16 A and B (float32 products and sums, float32 C). */
    void gemmBf16(ColumnMajorGemm g, long a, long b, long c);

    /** Waits for all queued work; reports a failure of earlier work. */
    void synchronize();

    /** Free and total device memory, in bytes. */
    long[] memoryInfo();

    /**
     * Calls so far that move data between host and device or wait for the device (uploads, downloads,
     * synchronisations): work that does any cannot be recorded into a graph.
     */
    default long hostInteractions() { return 0; }

    /** Whether {@link #beginCapture} records work into graphs (CUDA graphs); when not, the backend runs eagerly. */
    default boolean capturesGraphs() { return false; }

    /**
     * From now on the stream's work is recorded, not run, until {@link #endCapture}; meanwhile no call may move
     * data to or from the host or wait for the device.
     */
    default void beginCapture() { throw new UnsupportedOperationException("this device records no graphs"); }

    /** Ends the recording begun by {@link #beginCapture}: the recorded work, ready to launch. */
    default RecordedGraph endCapture() { throw new UnsupportedOperationException("this device records no graphs"); }

    /** Recorded work: each {@link #launch} queues all of it on the stream, reading and writing the same addresses. */
    interface RecordedGraph extends AutoCloseable {
        void launch();

        @Override
        void close();
    }

    /** The device and its libraries, one line. */
    String describe();

    @Override
    void close();
}
