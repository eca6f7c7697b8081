package esdnative.backend.cuda;

import jcuda.driver.CUstream;

/** A JCuda stream whose raw handle we can read, to hand the same stream to cuBLAS. */
final class Stream extends CUstream {
    /** The CUstream handle (0 until cuStreamCreate fills it in). */
    long handle() {
        return getNativePointer();
    }
}
