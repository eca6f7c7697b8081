package esdnative.backend.cuda;

import esdnative.backend.Backend;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The CUDA backend on the {@link EmulatedDevice}, for tests of any package (e.g. the UNet goldens). Builds the
 * emulator library on first use; aborts the calling test, printing why, where it cannot be built.
 */
public final class EmulatedCuda {
    static final Path LIBRARY = Path.of("target/kernel-emulation/libesdemu.so");
    private static String failure;
    private static boolean built;

    private EmulatedCuda() {}

    /** A strict-float32 CUDA backend whose kernels run on the CPU emulator. */
    public static Backend create() {
        return create(CudaBackend.MathMode.FP32);
    }

    /** The emulated backend in a given mode: FP32, or BF16 (the emulated GEMMs have no TF32 rounding). */
    public static CudaBackend create(CudaBackend.MathMode mode) {
        ensureBuilt();
        return new CudaBackend(new EmulatedDevice(LIBRARY.toAbsolutePath()), mode);
    }

    static synchronized void ensureBuilt() {
        if (!built && failure == null) {
            try {
                Process p = new ProcessBuilder("bash", "kernels/emulation/build-device.sh", LIBRARY.toString())
                        .redirectErrorStream(true).start();
                String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (p.waitFor(5, TimeUnit.MINUTES) && p.exitValue() == 0) built = true;
                else failure = "the kernel emulator did not build: " + output;
            } catch (IOException e) {
                failure = "the kernel emulator did not build: " + e.getMessage();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                failure = "interrupted while building the kernel emulator";
            }
        }
        if (failure != null) {
            System.out.println("SKIPPED: " + failure);
            Assumptions.abort(failure);
        }
    }
}
