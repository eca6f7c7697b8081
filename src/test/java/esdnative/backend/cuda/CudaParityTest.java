package esdnative.backend.cuda;

import esdnative.backend.cpu.CpuBackend;
import esdnative.selftest.OpCase;
import esdnative.selftest.SelfTest;
import esdnative.selftest.SelfTestCases;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every self-test case, CUDA against the CPU reference, in TF32 (GEMM ops within 5e-3, the rest 1e-5) and in
 * strict float32 (all within 1e-5); the caching allocator and its out-of-memory report. Skips, printing why, where
 * there is no usable GPU.
 */
class CudaParityTest {
    private static CudaProbe.Result probe;
    private static CpuBackend cpu;

    @BeforeAll
    static void probe() {
        probe = CudaBackend.probe();
        if (!probe.available()) System.out.println("CudaParityTest skipped: " + probe);
        assumeTrue(probe.available(), probe.toString());
        cpu = new CpuBackend();
    }

    @AfterAll
    static void close() {
        if (cpu != null) cpu.close();
    }

    @TestFactory
    List<DynamicTest> tf32() {
        return cases(CudaBackend.MathMode.TF32, 5e-3);
    }

    @TestFactory
    List<DynamicTest> strictFloat32() {
        return cases(CudaBackend.MathMode.FP32, 1e-5);
    }

    @Test
    void workspacesComeFromTheCacheAfterTheFirstCall() {
        try (CudaBackend gpu = new CudaBackend(CudaBackend.MathMode.TF32)) {
            Conv2dShape shape = new Conv2dShape(2, 8, 16, 16, 8, 3, 3, 1, 1);
            Tensor in = gpu.zeros(2, 8, 16, 16), w = gpu.zeros(8, 8, 3, 3), out = gpu.zeros(2, 8, 16, 16);
            gpu.conv2d(out, in, w, null, shape);
            long after = gpu.deviceAllocations();
            for (int i = 0; i < 3; i++) {
                gpu.conv2d(out, in, w, null, shape);
                gpu.conv2dBackwardData(in, out, w, shape);
            }
            gpu.synchronize();
            assertEquals(after, gpu.deviceAllocations(), gpu.memoryReport());
        }
    }

    @Test
    void outOfMemoryNamesTheOpAndTheSizes() {
        try (CudaBackend gpu = new CudaBackend(CudaBackend.MathMode.TF32)) {
            CudaException e = assertThrows(CudaException.class, () -> gpu.zeros(Integer.MAX_VALUE, 1 << 16));
            assertTrue(e.getMessage().contains("zeros: out of GPU memory allocating"), e.getMessage());
            assertTrue(e.getMessage().contains("free of"), e.getMessage());
            Tensor t = gpu.fromHost(new float[] {1, 2, 3}, 3); // still usable afterwards
            assertEquals(6f, gpu.toHost(t)[0] + gpu.toHost(t)[1] + gpu.toHost(t)[2]);
        }
    }

    private List<DynamicTest> cases(CudaBackend.MathMode mode, double gemmTolerance) {
        List<DynamicTest> tests = new ArrayList<>();
        CudaBackend[] gpu = new CudaBackend[1];
        tests.add(DynamicTest.dynamicTest("open " + mode, () -> gpu[0] = new CudaBackend(mode)));
        for (OpCase c : SelfTestCases.all()) {
            tests.add(DynamicTest.dynamicTest(c.name(), () -> {
                SelfTest.Row row = SelfTest.compare(c, cpu, gpu[0], c.gemm() ? gemmTolerance : 1e-5, 1);
                assertTrue(row.passed(), row.toString());
            }));
        }
        tests.add(DynamicTest.dynamicTest("close " + mode, () -> gpu[0].close()));
        return tests;
    }
}
