package esdnative.cli;

import esdnative.backend.cuda.CudaBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class SelfTestCommandTest {

    @Test
    void cpuSanityRunPasses() {
        assertEquals(0, Main.run("selftest", "--backend", "cpu", "--only", "gelu"));
    }

    @Test
    void withoutAGpuItExplainsAndExitsZero() {
        assumeTrue(!CudaBackend.probe().available(), "this machine has a usable GPU");
        assertEquals(0, Main.run("selftest", "--only", "conv2d 1x1"));
    }

    @Test
    void badFlagsAreUsageErrors() {
        assertEquals(2, Main.run("selftest", "--backend", "tpu"));
        assertEquals(2, Main.run("selftest", "--math", "fp16"));
        assertEquals(2, Main.run("selftest", "--only", "no such op"));
    }
}
