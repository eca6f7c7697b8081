package esdnative.backend.cuda;

import esdnative.backend.cpu.CpuBackend;
import esdnative.selftest.OpCase;
import esdnative.selftest.SelfTest;
import esdnative.selftest.SelfTestCases;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every self-test case, CUDA against the CPU reference, in TF32 (GEMM ops within 5e-3, the rest 1e-5) and in
 * strict float32 (all within 1e-5). Skips, printing why, where there is no usable GPU.
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
