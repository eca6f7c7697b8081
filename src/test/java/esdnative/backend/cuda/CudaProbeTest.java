package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The probe answers, on any machine, without throwing or hanging; without a driver it says so. */
class CudaProbeTest {

    @Test
    void answersWithAOneLineDescription() {
        CudaProbe.Result result = assertTimeoutPreemptively(Duration.ofSeconds(CudaProbe.TIMEOUT_SECONDS + 30),
                CudaBackend::probe);
        System.out.println("CudaProbeTest: " + result);
        assertFalse(result.description().isBlank());
        assertFalse(result.description().contains("\n"), result.description());
    }

    @Test
    void withoutADriverItIsUnavailableAndSaysWhy() {
        boolean driverLoads;
        try {
            CudaLibraries.standard().loadDriver();
            driverLoads = true;
        } catch (CudaException e) {
            driverLoads = false;
        }
        assumeTrue(!driverLoads, "this machine has an NVIDIA driver");
        CudaProbe.Result result = CudaBackend.probe();
        assertFalse(result.available());
        assertTrue(result.description().contains("no NVIDIA driver"), result.description());
    }

    @Test
    void constructingTheBackendWithoutADriverThrowsACudaException() {
        assumeTrue(!CudaBackend.probe().available(), "this machine has a usable GPU");
        try {
            new CudaBackend(CudaBackend.MathMode.TF32).close();
            throw new AssertionError("a CUDA backend started although the probe said it cannot");
        } catch (CudaException expected) {
            assertFalse(expected.getMessage().isBlank());
        }
    }
}
