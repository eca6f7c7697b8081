package esdnative.model.vae;

import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;

/** The VAE decode goldens on the CUDA backend in strict float32; skipped with the reason where no GPU is usable. */
class VaeCudaDecoderTest {
    @Test
    void decodesLikeDiffusers() throws IOException {
        VaeConfig config = VaeConfig.fromJson(Fixtures.path("tiny-sd-a/vae/config.json"));
        CudaProbe.Result probe = CudaBackend.probe();
        if (!probe.available()) {
            System.out.println("SKIPPED: " + probe);
            Assumptions.abort(probe.toString());
        }
        try (CudaBackend be = new CudaBackend(CudaBackend.MathMode.FP32)) {
            VaeDecoderTest.checkDecoding(be, config);
        }
    }
}
