package esdnative.cli;

import esdnative.selftest.OpTimings;
import esdnative.testing.Cli;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OpBenchCommandTest {
    /** "NAME   0.123 ms   4.567 TFLOP/s" (or GB/s): a time and a rate per op */
    private static final Pattern TIMING = Pattern.compile("(.+?) +(\\d+\\.\\d{3}) ms +(\\d+\\.\\d+) (TFLOP/s|GB/s)");

    @Test
    void tinyCpuRunTimesEveryOp() {
        Cli r = Cli.run("opbench", "--backend", "cpu", "--size", "tiny", "--seconds", "0.001");
        assertEquals(0, r.exit(), r.err());
        List<String> lines = r.out().lines().toList();
        List<OpTimings.Case> cases = OpTimings.cases(8);
        assertEquals("opbench on cpu, latents 8x8", lines.getFirst(), r.out());
        assertEquals(1 + cases.size(), lines.size(), "a line for each op: " + r.out());
        for (int i = 0; i < cases.size(); i++) {
            Matcher m = TIMING.matcher(lines.get(i + 1));
            assertTrue(m.matches(), lines.get(i + 1));
            assertEquals(cases.get(i).name(), m.group(1), "the ops in order");
            assertTrue(Double.parseDouble(m.group(2)) > 0, "a measured time: " + lines.get(i + 1));
            assertEquals(cases.get(i).flops() > 0 ? "TFLOP/s" : "GB/s", m.group(4), lines.get(i + 1));
        }
    }

    @Test
    void badFlagsAreUsageErrors() {
        assertEquals(2, Main.run("opbench", "--backend", "cpu", "--size", "huge"));
        assertEquals(2, Main.run("opbench", "--backend", "cpu", "--seconds", "0"));
        assertEquals(2, Main.run("opbench", "--backend", "cpu", "--math", "fp16"));
    }
}
