package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;

/** {@link SdxlUNetGoldenChecks} on the CPU reference backend. */
class SdxlUNetGoldenTest extends SdxlUNetGoldenChecks {
    @Override
    Backend createBackend() { return new CpuBackend(); }
}
