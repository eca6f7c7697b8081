package esdnative.backend.cuda;

import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * One GPU through the CUDA driver API (JCuda): its primary context (the one the CUDA runtime inside cuBLAS uses
 * too, so both share memory and stream) and the single stream all the backend's work goes to. The context is
 * current on one thread at a time: {@link #bind} moves it to the calling thread.
 */
final class CudaContext implements AutoCloseable {
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final Stream stream = new Stream();
    private final String name;
    private final int computeMajor;
    private final int computeMinor;
    private final int multiprocessors;
    private final long totalMemory;
    private final int driverVersion;
    private Thread boundThread;

    /** Initialises the driver and makes device {@code ordinal}'s primary context current on this thread. */
    CudaContext(int ordinal) {
        check(JCudaDriver.cuInit(0), "cuInit");
        int[] count = new int[1];
        check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
        if (ordinal >= count[0]) {
            throw new CudaException("no CUDA device " + ordinal + " (the driver reports " + count[0] + ")");
        }
        check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet");
        byte[] nameBytes = new byte[256];
        check(JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
        int length = 0;
        while (length < nameBytes.length && nameBytes[length] != 0) length++;
        name = new String(nameBytes, 0, length, StandardCharsets.US_ASCII);
        computeMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        computeMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        long[] total = new long[1];
        check(JCudaDriver.cuDeviceTotalMem(total, device), "cuDeviceTotalMem");
        totalMemory = total[0];
        int[] version = new int[1];
        check(JCudaDriver.cuDriverGetVersion(version), "cuDriverGetVersion");
        driverVersion = version[0];

        check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
        check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        boundThread = Thread.currentThread();
        check(JCudaDriver.cuStreamCreate(stream, 0), "cuStreamCreate"); // blocking: ordered with legacy copies
    }

    /** The number of CUDA devices, after initialising the driver. */
    static int deviceCount() {
        check(JCudaDriver.cuInit(0), "cuInit");
        int[] count = new int[1];
        check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
        return count[0];
    }

    /** Makes the context current on the calling thread (cheap when it already is). */
    void bind() {
        Thread current = Thread.currentThread();
        if (current != boundThread) {
            check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
            boundThread = current;
        }
    }

    Stream stream() { return stream; }

    /** Waits for all queued work; reports a failure of any earlier kernel or copy, naming {@code op}. */
    void synchronize(String op) {
        check(JCudaDriver.cuStreamSynchronize(stream), op + ": stream synchronize (an earlier launch may have failed;"
                + " ESD_CUDA_SYNC=1 checks after every launch)");
    }

    /** Free and total device memory, in bytes. */
    long[] memoryInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    /** E.g. "NVIDIA H200, compute 9.0, 132 SMs, 139.8 GiB, driver CUDA 13.0". */
    String describe() {
        return String.format(Locale.ROOT, "%s, compute %d.%d, %d SMs, %.1f GiB, driver CUDA %d.%d", name, computeMajor, computeMinor,
                multiprocessors, totalMemory / (double) (1L << 30), driverVersion / 1000, (driverVersion % 1000) / 10);
    }

    /**
     * Destroys the stream. The primary context stays retained for the life of the process, as the CUDA runtime
     * inside cuBLAS keeps it too: releasing it could destroy the context under the runtime's feet when a later
     * backend is opened.
     */
    @Override
    public void close() {
        bind();
        check(JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        check(JCudaDriver.cuStreamDestroy(stream), "cuStreamDestroy");
    }

    private int attribute(int attribute) {
        int[] value = new int[1];
        check(JCudaDriver.cuDeviceGetAttribute(value, attribute, device), "cuDeviceGetAttribute");
        return value[0];
    }

    /** Throws a {@link CudaException} naming {@code what} and the CUDA error unless {@code result} is success. */
    static void check(int result, String what) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(what + " failed: " + CUresult.stringFor(result));
        }
    }
}
