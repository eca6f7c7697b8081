package esdnative.selftest;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The self-test harness catches what it claims to: the CPU backend against itself passes every case with zero
 * error; backends broken on purpose (a wrong value, an unwritten output, a write past the end, a dropped
 * accumulation) fail the case they break.
 */
class SelfTestHarnessTest {

    @Test
    void cpuAgainstItselfPassesEveryCaseExactly() {
        try (Backend a = new CpuBackend(); Backend b = new CpuBackend()) {
            for (OpCase c : SelfTestCases.all()) {
                SelfTest.Row row = SelfTest.compare(c, a, b, 1e-5, 3);
                assertTrue(row.passed(), row.toString());
                assertEquals(0.0, row.relError(), row.toString());
                assertEquals("yes", row.determinism());
            }
        }
    }

    @Test
    void aSlightlyWrongValueFails() {
        Backend broken = breaking("gelu", (cpu, args) -> {
            cpu.gelu((Tensor) args[0], (Tensor) args[1], (long) args[2]);
            cpu.scale((Tensor) args[0], (Tensor) args[0], 1.001f, (long) args[2]);
        });
        SelfTest.Row row = compare("gelu", broken);
        assertFalse(row.passed());
        assertTrue(row.relError() > 5e-4 && row.relError() < 2e-3, row.toString());
    }

    @Test
    void anUnwrittenOutputFails() {
        Backend broken = breaking("silu", (cpu, args) -> { });
        SelfTest.Row row = compare("silu", broken);
        assertFalse(row.passed());
        assertTrue(Double.isNaN(row.relError()), row.toString());
    }

    @Test
    void aWritePastTheEndFails() {
        Backend broken = breaking("add", (cpu, args) -> {
            Tensor out = (Tensor) args[0];
            cpu.add(out, (Tensor) args[1], (Tensor) args[2], (long) args[3]);
            cpu.fill(new Tensor(out.storage(), out.offset() + out.size(), 1), 0f);
        });
        SelfTest.Row row = compare("add", broken);
        assertFalse(row.passed());
        assertTrue(row.note().contains("wrote outside out"), row.toString());
    }

    @Test
    void overwritingInsteadOfAccumulatingFails() {
        Backend broken = breaking("siluBackward", (cpu, args) -> {
            cpu.fill((Tensor) args[0], 0f);
            cpu.siluBackward((Tensor) args[0], (Tensor) args[1], (Tensor) args[2], (long) args[3]);
        });
        assertFalse(compare("siluBackward", broken).passed());
    }

    @Test
    void theSanityRunFlagsNonFiniteOutputs() {
        Backend broken = breaking("silu", (cpu, args) -> { });
        try (Backend cpu = new CpuBackend()) {
            assertTrue(SelfTest.sanity(find("silu"), cpu, 1).passed());
        }
        assertFalse(SelfTest.sanity(find("silu"), broken, 1).passed());
    }

    private interface Override {
        void run(Backend cpu, Object[] args);
    }

    /** A CPU backend whose method {@code name} does {@code override} instead. */
    private static Backend breaking(String name, Override override) {
        Backend cpu = new CpuBackend();
        InvocationHandler handler = (proxy, method, args) -> {
            if (method.getName().equals(name)) {
                override.run(cpu, args);
                return null;
            }
            try {
                return method.invoke(cpu, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        };
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, handler);
    }

    private static SelfTest.Row compare(String caseName, Backend candidate) {
        try (Backend cpu = new CpuBackend()) {
            return SelfTest.compare(find(caseName), cpu, candidate, 1e-5, 5);
        }
    }

    private static OpCase find(String name) {
        List<OpCase> matches = SelfTestCases.all().stream().filter(c -> c.name().equals(name)).toList();
        assertEquals(1, matches.size(), name);
        return matches.get(0);
    }
}
