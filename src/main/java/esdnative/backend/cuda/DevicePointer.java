package esdnative.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** A JCuda device pointer whose raw address we can read, for cuBLAS calls and kernel arguments. */
final class DevicePointer extends CUdeviceptr {
    /** The device address (0 until cuMemAlloc fills it in). */
    long address() {
        return getNativePointer() + getByteOffset();
    }
}
