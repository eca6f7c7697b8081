package esdnative.cli;

import esdnative.backend.cuda.CudaBackend;
import esdnative.selftest.SelfTestCases;
import esdnative.testing.Cli;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class SelfTestCommandTest {

    @Test
    void cpuSanityRunPasses() {
        Cli r = Cli.run("selftest", "--backend", "cpu", "--only", "gelu");
        assertEquals(0, r.exit(), r.out());
        long cases = SelfTestCases.all().stream().filter(c -> c.name().contains("gelu")).count();
        assertTrue(cases > 0);
        assertTrue(r.out().contains("cpu: " + cases + " of " + cases + " ran cleanly"), r.out());
    }

    @Test
    void withoutAGpuItExplainsRunsTheCpuSanityCheckAndFails() {
        assumeTrue(!CudaBackend.probe().available(), "this machine has a usable GPU");
        Cli r = Cli.run("selftest", "--only", "conv2d 1x1");
        String out = r.out();
        System.out.print(out);
        assertEquals(SelfTestCommand.CUDA_UNAVAILABLE, r.exit(), "asked for CUDA and it is not there: not a pass");
        assertTrue(out.contains("cuda unavailable: "), out);
        // the whole chain: our message, then the loader's own reason
        assertTrue(out.contains("cause:\nesdnative.backend.cuda.CudaException: "), out);
        assertTrue(out.contains("\ncaused by: "), out);
        // the case ran on the CPU and passed the sanity checks
        assertTrue(out.contains("cpu: 1 of 1 ran cleanly"), out);
        assertTrue(out.contains("selftest: FAILED (--backend cuda: CUDA is unavailable; the CPU sanity run passed)"), out);
    }

    /** auto without a GPU: says so, and the CPU sanity run's result is the exit code. */
    @Test
    void autoWithoutAGpuRunsTheCpuSanityCheck() {
        assumeTrue(!CudaBackend.probe().available(), "this machine has a usable GPU");
        Cli r = Cli.run("selftest", "--backend", "auto", "--only", "conv2d 1x1");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("cuda unavailable: "), r.out());
        assertTrue(r.out().contains("backend: cpu (auto: no usable CUDA)"), r.out());
        assertTrue(r.out().contains("cpu: 1 of 1 ran cleanly"), r.out());
    }

    @Test
    void badFlagsAreUsageErrors() {
        assertEquals(2, Main.run("selftest", "--backend", "tpu"));
        assertEquals(2, Main.run("selftest", "--math", "fp16"));
        assertEquals(2, Main.run("selftest", "--only", "no such op"));
    }
}
