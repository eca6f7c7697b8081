package esdnative.options;

import esdnative.backend.cuda.CudaBackend.MathMode;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --precision, its former name --math, and the CPU's refusal of bf16. */
class BackendOptionsTest {
    @Test
    void precisionChoosesTheGpuMathAndMathIsItsFormerName() {
        assertEquals(MathMode.BF16, options("--precision", "bf16").mathMode());
        assertEquals(MathMode.FP32, options("--precision", "FP32").mathMode());
        assertEquals(MathMode.TF32, options("--math", "tf32").mathMode());
        UserError both = assertThrows(UserError.class, () -> options("--precision", "fp32", "--math", "tf32").mathMode());
        assertTrue(both.getMessage().contains("former name"), both.getMessage());
        UserError unknown = assertThrows(UserError.class, () -> options("--precision", "fp16").mathMode());
        assertTrue(unknown.getMessage().contains("default, fp32, tf32, bf16"), unknown.getMessage());
    }

    @Test
    void theCpuRefusesBf16BeforeAnyWork() {
        UserError refused = assertThrows(UserError.class, () -> options("--backend", "cpu", "--precision", "bf16").check());
        assertTrue(refused.getMessage().startsWith("--precision bf16: --backend cpu computes in float32 only"),
                refused.getMessage());
        assertThrows(UserError.class, () -> options("--backend", "cpu", "--precision", "bf16").open(line -> {}));
        options("--backend", "cpu", "--precision", "tf32").check(); // the CPU is float32, stricter than asked
    }

    private static BackendOptions options(String... args) {
        return CommandLine.populateCommand(new BackendOptions(), args);
    }
}
