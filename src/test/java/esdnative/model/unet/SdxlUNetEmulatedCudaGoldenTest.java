package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cuda.EmulatedCuda;

/**
 * {@link SdxlUNetGoldenChecks} on the CUDA backend with its kernels on the CPU emulator (no GPU needed), SDXL's
 * added-conditioning path included (time-id sinusoids, the row concatenation and its split in backward).
 */
class SdxlUNetEmulatedCudaGoldenTest extends SdxlUNetGoldenChecks {
    @Override
    Backend createBackend() {
        return EmulatedCuda.create();
    }
}
