package esdnative.cli;

import esdnative.backend.cuda.CudaBackend;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class SelfTestCommandTest {

    @Test
    void cpuSanityRunPasses() {
        assertEquals(0, Main.run("selftest", "--backend", "cpu", "--only", "gelu"));
    }

    @Test
    void withoutAGpuItExplainsRunsTheCpuSanityCheckAndFails() {
        assumeTrue(!CudaBackend.probe().available(), "this machine has a usable GPU");
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream old = System.out;
        int code;
        try {
            System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
            code = Main.run("selftest", "--only", "conv2d 1x1");
        } finally {
            System.setOut(old);
        }
        String out = buffer.toString(StandardCharsets.UTF_8);
        System.out.print(out);
        assertEquals(SelfTestCommand.CUDA_UNAVAILABLE, code, "asked for CUDA and it is not there: not a pass");
        assertTrue(out.contains("cuda unavailable: "), out);
        // the whole chain: our message, then the loader's own reason
        assertTrue(out.contains("cause:\nesdnative.backend.cuda.CudaException: "), out);
        assertTrue(out.contains("\ncaused by: "), out);
        // the case ran on the CPU and passed the sanity checks
        assertTrue(out.contains("cpu: 1 of 1 ran cleanly"), out);
        assertTrue(out.contains("selftest: FAILED (--backend cuda: CUDA is unavailable; the CPU sanity run passed)"), out);
    }

    @Test
    void badFlagsAreUsageErrors() {
        assertEquals(2, Main.run("selftest", "--backend", "tpu"));
        assertEquals(2, Main.run("selftest", "--math", "fp16"));
        assertEquals(2, Main.run("selftest", "--only", "no such op"));
    }
}
