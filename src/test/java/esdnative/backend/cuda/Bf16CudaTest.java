package esdnative.backend.cuda;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.selftest.OpCase;
import esdnative.selftest.SelfTest;
import esdnative.selftest.SelfTestCases;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA backend's bf16 precision on the {@link EmulatedDevice} (the kernels' sources on the CPU emulator; GEMMs
 * that read bf16 operands as the float32 values they stand for): frozen weights hold exactly their values rounded to
 * nearest even, and every GEMM-based op equals the CPU reference run on operands rounded by {@link Bf16Reference}
 * within float32 rounding (1e-5), while differing from the unrounded reference by what bf16 rounding makes (so a
 * path that skipped the rounding would fail).
 */
class Bf16CudaTest {
    /** Float32 rounding and summation order only, as the self-test's float32 tolerance. */
    private static final double SAME = 1e-5;
    /**
     * The least relative difference from the unrounded reference: rounding each operand to 8 significant bits moves
     * a product of random operands by about 2^-9 / √3 relative each (≈ 2e-3 over a sum); 1e-4 is far below that and
     * far above float32's ~1e-7.
     */
    private static final double ROUNDED = 1e-4;

    private static CudaBackend bf16;
    private static CpuBackend cpu;

    @BeforeAll
    static void open() {
        bf16 = EmulatedCuda.create(CudaBackend.MathMode.BF16);
        cpu = new CpuBackend();
    }

    @AfterAll
    static void close() {
        if (bf16 != null) bf16.close();
        if (cpu != null) cpu.close();
    }

    @Test
    void frozenWeightsHoldTheirValuesRoundedToNearestEvenBitForBit() {
        // the rounding's edge cases (ties both ways, just off a tie, overflow to infinity, subnormals, zeros, nan),
        // then random bit patterns over every exponent
        int[] edges = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x00000001, 0x807fffff, 0x00008000,
                0x00018000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, 0x7f7fffff, 0x7f7f8000,
                0x7f7effff, 0x7f7e8000, 0xff7f8000, 0x0080ffff, 0x007fffff};
        SplittableRandom random = new SplittableRandom(7);
        float[] weights = new float[50_000];
        for (int i = 0; i < weights.length; i++) {
            weights[i] = Float.intBitsToFloat(i < edges.length ? edges[i] : random.nextInt());
        }
        float[] before = {1.5f, -2.25f, 3e-7f}, after = {0.1f, 0.2f};   // float32 neighbours in the same buffer
        Tensor buffer = bf16.fromHost(concat(before, weights, after), before.length + weights.length + after.length);
        Tensor frozen = buffer.view(before.length, weights.length);
        bf16.freezeWeights(List.of(frozen));

        Tensor back = bf16.zeros(weights.length);
        bf16.copy(back, frozen);
        float[] got = bf16.toHost(back);
        for (int i = 0; i < weights.length; i++) {
            float want = Bf16Reference.round(weights[i]);
            if (Float.isNaN(want)) {
                assertTrue(Float.isNaN(got[i]), "element " + i + " stays NaN");
            } else {
                int at = i;
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[i]),
                        () -> "element " + at + ", float32 bits " + Integer.toHexString(Float.floatToRawIntBits(weights[at])));
            }
        }
        assertArrayEquals(before, bf16.toHost(buffer.view(0, before.length)), "the float32 elements before it");
        assertArrayEquals(after, bf16.toHost(buffer.view(before.length + weights.length, after.length)),
                "the float32 elements after it");
    }

    @Test
    void aFrozenWeightServesGemmsAndCopiesOnly() {
        Tensor w = bf16.fromHost(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        bf16.freezeWeights(List.of(w));
        Tensor y = bf16.zeros(2, 3);
        var refused = assertThrows(IllegalArgumentException.class, () -> bf16.addRowBias(y, w.view(0, 3), 2, 3));
        assertTrue(refused.getMessage().contains("frozen bf16 weight"), refused.getMessage());
        assertThrows(IllegalArgumentException.class, () -> bf16.toHost(w));
    }

    @Test
    void inFloat32ModesFreezingChangesNothing() {
        try (CudaBackend fp32 = EmulatedCuda.create(CudaBackend.MathMode.FP32)) {
            float[] values = {0.1f, 1e-9f, 3.3333333f};
            Tensor w = fp32.fromHost(values, 3);
            fp32.freezeWeights(List.of(w));
            assertArrayEquals(values, fp32.toHost(w));
        }
    }

    @Test
    void gemmsMultiplyTheRoundedOperandsWithFloat32Sums() {
        int m = 13, n = 17, k = 29, batch = 3;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int lda = ta ? m : k, ldb = tb ? k : n;
                compare("gemm " + (ta ? "T" : "N") + (tb ? "T" : "N") + " batched, beta 0.5",
                        List.of(batch * m * k, batch * k * n), batch * m * n,
                        (be, t) -> be.gemm(ta, tb, m, n, k, 0.7f, t.get(0), lda, (long) m * k, t.get(1), ldb,
                                (long) k * n, 0.5f, t.get(2), n, (long) m * n, batch), false);
            }
        }
        // a frozen (bf16-stored) B, as a linear layer's weight [n, k]
        compare("gemm NT, frozen B", List.of(m * k, n * k), m * n,
                (be, t) -> be.gemm(false, true, m, n, k, 1f, t.get(0), k, 0, t.get(1), k, 0, 0f, t.get(2), n, 0, 1),
                true);
    }

    @Test
    void convolutionsMultiplyTheRoundedOperandsWithFloat32Sums() {
        for (Conv2dShape sh : List.of(new Conv2dShape(2, 3, 9, 7, 5, 3, 3, 2, 1), new Conv2dShape(2, 6, 5, 4, 3, 1, 1, 1, 0))) {
            int in = sh.n() * sh.c() * sh.h() * sh.w(), w = sh.k() * sh.c() * sh.r() * sh.s();
            int out = sh.n() * sh.k() * sh.outH() * sh.outW();
            String label = sh.r() + "x" + sh.s() + " s" + sh.stride();
            for (boolean frozenWeight : new boolean[] {false, true}) {
                String weight = frozenWeight ? ", frozen weight" : "";
                compare("conv2d " + label + weight, List.of(in, w), out,
                        (be, t) -> be.conv2d(t.get(2), t.get(0), t.get(1), null, sh), frozenWeight);
                compare("conv2dBackwardData " + label + weight, List.of(out, w), in,
                        (be, t) -> be.conv2dBackwardData(t.get(2), t.get(0), t.get(1), sh), frozenWeight);
            }
            compare("conv2dBackwardWeight " + label, List.of(out, in), w,
                    (be, t) -> be.conv2dBackwardWeight(t.get(2), null, t.get(0), t.get(1), sh), false);
        }
    }

    /**
     * The self-test's ESD-x step (tiny UNet; frozen weights stored in bf16, the cross-attention weights trained in
     * float32 with Adam) against the CPU's float32: within the bf16 model tolerance, and off by what bf16 makes.
     */
    @Test
    void anEsdXStepWithFrozenBf16WeightsIsWithinTheModelTolerance() {
        OpCase esd = SelfTestCases.all().stream().filter(c -> c.name().equals("esd-x step tiny (loss, grads, adam) #1"))
                .findFirst().orElseThrow();
        SelfTest.Row row = SelfTest.compare(esd, cpu, bf16, OpCase.BF16_MODEL_TOLERANCE, 1);
        assertTrue(row.passed(), row.toString());
        assertTrue(row.relError() >= ROUNDED, "only " + row.relError() + " from float32: the bf16 rounding was not applied");
    }

    /**
     * Runs {@code op} on tensors [operand 0, operand 1, result] (the result starts random: ops that accumulate add to
     * it) on the bf16 backend, on the CPU with both operands rounded to bf16, and on the CPU unrounded; with
     * {@code freezeSecond} the second operand is frozen (stored in bf16) on the GPU first.
     */
    private static void compare(String name, List<Integer> operandSizes, int resultSize,
                                BiConsumer<Backend, List<Tensor>> op, boolean freezeSecond) {
        SplittableRandom random = new SplittableRandom(name.hashCode());
        List<float[]> operands = new ArrayList<>();
        for (int size : operandSizes) operands.add(uniform(random, size));
        float[] result = uniform(random, resultSize);

        List<Tensor> onGpu = new ArrayList<>();
        for (float[] x : operands) onGpu.add(bf16.fromHost(x, x.length));
        onGpu.add(bf16.fromHost(result, resultSize));
        if (freezeSecond) bf16.freezeWeights(List.of(onGpu.get(1)));
        op.accept(bf16, onGpu);
        float[] gpu = bf16.toHost(onGpu.get(2));

        float[] rounded = onCpu(op, operands.stream().map(Bf16Reference::round).toList(), result);
        float[] unrounded = onCpu(op, operands, result);
        double error = relativeError(gpu, rounded), rounding = relativeError(gpu, unrounded);
        assertTrue(error <= SAME, name + ": relative error " + error + " from the CPU on rounded operands");
        assertTrue(rounding >= ROUNDED, name + ": only " + rounding + " from the CPU on unrounded operands:"
                + " the bf16 rounding was not applied");
    }

    private static float[] onCpu(BiConsumer<Backend, List<Tensor>> op, List<float[]> operands, float[] result) {
        List<Tensor> t = new ArrayList<>();
        for (float[] x : operands) t.add(cpu.fromHost(x, x.length));
        t.add(cpu.fromHost(result, result.length));
        op.accept(cpu, t);
        return cpu.toHost(t.get(2));
    }

    private static double relativeError(float[] a, float[] ref) {
        double diff = 0, norm = 0;
        for (int i = 0; i < ref.length; i++) {
            diff += ((double) a[i] - ref[i]) * ((double) a[i] - ref[i]);
            norm += (double) ref[i] * ref[i];
        }
        return Math.sqrt(diff / norm);
    }

    private static float[] uniform(SplittableRandom random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (2 * random.nextDouble() - 1);
        return x;
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) n += p.length;
        float[] out = new float[n];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
