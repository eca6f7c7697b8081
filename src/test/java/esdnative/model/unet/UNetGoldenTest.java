package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;

/** {@link UNetGoldenChecks} on the CPU reference backend. */
class UNetGoldenTest extends UNetGoldenChecks {
    @Override
    Backend createBackend() { return new CpuBackend(); }
}
