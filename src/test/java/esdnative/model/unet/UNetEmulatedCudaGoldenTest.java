package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cuda.EmulatedCuda;

/**
 * {@link UNetGoldenChecks} on the CUDA backend with its kernels on the CPU emulator (no GPU needed): the UNet's
 * forward and backward through the CUDA backend's code (launch shapes, workspaces, cuBLAS argument mapping and
 * the kernels' own sources) against the diffusers goldens, with the CPU's tolerances.
 */
class UNetEmulatedCudaGoldenTest extends UNetGoldenChecks {
    @Override
    Backend createBackend() {
        return EmulatedCuda.create();
    }
}
