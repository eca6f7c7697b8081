package esdnative.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class OpBenchCommandTest {
    @Test
    void tinyCpuRunTimesEveryOp() {
        assertEquals(0, Main.run("opbench", "--backend", "cpu", "--size", "tiny", "--seconds", "0.001"));
    }

    @Test
    void badFlagsAreUsageErrors() {
        assertEquals(2, Main.run("opbench", "--backend", "cpu", "--size", "huge"));
        assertEquals(2, Main.run("opbench", "--backend", "cpu", "--seconds", "0"));
    }
}
