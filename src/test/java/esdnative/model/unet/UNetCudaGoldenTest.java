package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;
import org.junit.jupiter.api.Assumptions;

/**
 * {@link UNetGoldenChecks} on the CUDA backend in strict float32 (TF32 off), held to the same tolerances as the
 * CPU; skipped, with the reason printed, where no usable GPU is present.
 */
class UNetCudaGoldenTest extends UNetGoldenChecks {
    @Override
    Backend createBackend() {
        CudaProbe.Result probe = CudaBackend.probe();
        if (!probe.available()) {
            System.out.println("SKIPPED: " + probe);
            Assumptions.abort(probe.toString());
        }
        return new CudaBackend(CudaBackend.MathMode.FP32);
    }
}
