package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every CUDA kernel's own source, compiled by the host C++ compiler against a CPU emulator of the CUDA features
 * it uses (threads, blocks, __syncthreads, warp shuffles) and compared with double-precision loops within 1e-5
 * (2e-5 for the norm backward passes, 1e-4 for the timestep embedding's float-rounded frequencies):
 * kernels/emulation/kernel_tests.cpp. This checks the kernels' logic where there is no GPU; the GPU self-test
 * checks them again on the hardware.
 */
class KernelEmulationTest {

    @Test
    void everyKernelMatchesItsDefinitionOnTheEmulator() throws IOException, InterruptedException {
        assumeTrue(hasCompiler(), "no C++ compiler (g++) on this machine");
        Process p = new ProcessBuilder("bash", "kernels/emulation/run.sh", "target/kernel-emulation")
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "kernel emulation did not finish");
        System.out.println(output);
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("all passed"), output);
    }

    private static boolean hasCompiler() throws InterruptedException {
        try {
            return new ProcessBuilder(System.getenv().getOrDefault("CXX", "g++"), "--version")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor() == 0;
        } catch (IOException e) {
            return false;
        }
    }
}
