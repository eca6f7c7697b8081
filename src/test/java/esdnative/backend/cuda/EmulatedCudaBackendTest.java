package esdnative.backend.cuda;

import esdnative.backend.Scope;
import esdnative.backend.cpu.CpuBackend;
import esdnative.selftest.OpCase;
import esdnative.selftest.OpCases;
import esdnative.selftest.OpTimings;
import esdnative.selftest.SelfTest;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole CUDA backend without a GPU: {@link CudaBackend} on an {@link EmulatedDevice} (the kernels' CUDA
 * sources on the CPU emulator, cuBLAS's GEMM definition in float32) against the CPU reference, every self-test
 * case within 1e-5. What is left for the GPU itself: JCuda, cuBLAS and the hardware.
 */
class EmulatedCudaBackendTest {
    private static CudaBackend emulated;
    private static CpuBackend cpu;

    @BeforeAll
    static void build() {
        emulated = (CudaBackend) EmulatedCuda.create();
        cpu = new CpuBackend();
    }

    @AfterAll
    static void close() {
        if (emulated != null) emulated.close();
        if (cpu != null) cpu.close();
    }

    @TestFactory
    List<DynamicTest> everySelfTestCaseMatchesTheCpuReference() {
        // the single ops; the whole UNet on the emulator is UNetEmulatedCudaGoldenTest's
        return OpCases.all().stream().map((OpCase c) -> DynamicTest.dynamicTest(c.name(), () -> {
            SelfTest.Row row = SelfTest.compare(c, cpu, emulated, 1e-5, 11);
            assertTrue(row.passed(), row.toString());
        })).toList();
    }

    @Test
    void workspacesAreReusedAndTensorsFreeWhenUnreachable() {
        var shape = new esdnative.tensor.Conv2dShape(1, 3, 6, 6, 4, 3, 3, 1, 1);
        Tensor in = emulated.zeros(1, 3, 6, 6), w = emulated.zeros(4, 3, 3, 3), out = emulated.zeros(1, 4, 6, 6);
        emulated.conv2d(out, in, w, null, shape);
        long after = emulated.deviceAllocations();
        for (int i = 0; i < 3; i++) emulated.conv2d(out, in, w, null, shape);
        assertEquals(after, emulated.deviceAllocations(), emulated.memoryReport());
    }

    @Test
    void aClosedScopeHandsItsUnkeptBlocksBack() {
        long released, kept;
        Tensor keptTensor;
        try (Scope scope = emulated.openScope()) {
            released = address(emulated.zeros(1000));
            keptTensor = emulated.zeros(1000);
            emulated.fill(keptTensor, 7f);
            scope.keep(keptTensor);
            kept = address(keptTensor);
        }
        Tensor again = emulated.zeros(1000);
        assertEquals(released, address(again), "the released block is reused");
        assertEquals(0f, emulated.toHost(again)[999]);
        assertTrue(address(emulated.zeros(1000)) != kept, "the kept block is still in use");
        assertEquals(7f, emulated.toHost(keptTensor)[0]);
    }

    private static long address(Tensor t) {
        return ((CudaStorage) t.storage()).address(t.offset());
    }

    @Test
    void everyOpbenchCaseRunsAtTheTinySize() {
        for (OpTimings.Case c : OpTimings.cases(8)) {
            OpTimings.Timing t = OpTimings.time(c, emulated, 0);
            assertTrue(t.millis() > 0, t.toString());
        }
    }

    @Test
    void wrongSizesAndForeignTensorsAreRefusedBeforeAnyLaunch() {
        Tensor small = emulated.zeros(5), big = emulated.zeros(10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> emulated.add(big, small, big, 10));
        assertTrue(e.getMessage().contains("cuda add: a"), e.getMessage());
        Tensor host = cpu.zeros(10);
        assertThrows(IllegalArgumentException.class, () -> emulated.add(big, host, big, 10));
    }
}
