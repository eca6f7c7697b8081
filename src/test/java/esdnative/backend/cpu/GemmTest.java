package esdnative.backend.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Gemm.sgemm against a float64 triple loop. Tolerance: the standard worst-case bound for a float32 sum
 * with r roundings on any term's path, |err| ≤ r·u·(|alpha|·Σ_p |a_ip·b_pj| + |beta·c_ij|), u = 2⁻²⁴, where
 * r = k (one fma per term) + 2 per k-block (alpha·partial, adding it to C) + 2 (beta·c, slack); a wrong
 * index or a dropped term errs by about |a·b| and fails it.
 */
class GemmTest {
    private static final double U = Math.ulp(1.0f) / 2; // 2⁻²⁴

    /** one call's shape and layout: lda/ldb/ldc exceed the stored widths by pad, arrays start at off. */
    record Case(boolean transA, boolean transB, int m, int n, int k, float alpha, float beta, int pad, int off) {
        @Override public String toString() {
            return (transA ? "T" : "N") + (transB ? "T" : "N") + " m=" + m + " n=" + n + " k=" + k
                    + " alpha=" + alpha + " beta=" + beta + " pad=" + pad + " off=" + off;
        }
    }

    static List<Case> cases() {
        // shapes reach every path: tiny, skinny n (transposed problem), several k-blocks (k > 256),
        // several column tasks (n > 512), two packed panels (n > 2048), row tails (m % 4 ≠ 0)
        int[][] shapes = {
                {1, 1, 1}, {3, 17, 5}, {17, 3, 65}, {65, 130, 17}, {130, 65, 300}, {1, 130, 65},
                {5, 600, 33}, {300, 8, 40}, {2, 40, 1000}, {67, 33, 517}, {9, 2100, 3},
        };
        float[][] alphaBeta = {{1f, 0f}, {0.75f, -0.5f}, {-1.25f, 1f}};
        List<Case> cases = new ArrayList<>();
        int s = 0;
        for (int[] shape : shapes) {
            for (int t = 0; t < 4; t++) {
                float[] ab = alphaBeta[(s + t) % alphaBeta.length];
                int pad = (s + t) % 2 == 0 ? 0 : 3, off = (s + t) % 3 == 0 ? 0 : 7;
                cases.add(new Case((t & 2) != 0, (t & 1) != 0, shape[0], shape[1], shape[2], ab[0], ab[1], pad, off));
            }
            s++;
        }
        return cases;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesFloat64Reference(Case cs) {
        check(cs, Parallel::forEach);
    }

    @Test
    void betaZeroOverwritesNaNGarbage() {
        for (int[] shape : new int[][]{{3, 5, 7}, {70, 90, 300}, {200, 9, 50}}) {
            check(new Case(false, true, shape[0], shape[1], shape[2], 1.5f, 0f, 2, 5), Parallel::forEach);
        }
    }

    @Test
    void kZeroScalesC() {
        check(new Case(false, false, 5, 6, 0, 2f, 0.5f, 1, 3), Parallel::forEach);
        check(new Case(true, true, 5, 6, 0, 2f, 0f, 1, 3), Parallel::forEach);
    }

    /** 1 thread, 3 threads and one thread running the tasks in reverse order give the same bits. */
    @Test
    void resultDoesNotDependOnThreadsOrTaskOrder() {
        Gemm.Loop reversed = (n, body) -> { for (int t = n - 1; t >= 0; t--) body.accept(t); };
        // 150 rows → 3 row tasks, 1100 columns → 3 column tasks, k = 700 → 3 k-blocks
        for (Case cs : List.of(new Case(false, false, 150, 1100, 700, 0.5f, 0.25f, 1, 2),
                new Case(true, true, 150, 1100, 700, 1f, 0f, 0, 0),
                new Case(false, true, 1000, 20, 300, 1f, 1f, 0, 0))) { // skinny: transposed path
            Operands x = Operands.random(cs, 42);
            float[] one = x.c.clone(), three = x.c.clone(), backwards = x.c.clone();
            Parallel.withThreads(1, () -> run(cs, x, one, Parallel::forEach));
            Parallel.withThreads(3, () -> run(cs, x, three, Parallel::forEach));
            run(cs, x, backwards, reversed);
            assertSameBits(cs + ", 1 vs 3 threads", one, three);
            assertSameBits(cs + ", 1 thread vs reversed tasks", one, backwards);
        }
    }

    private static void assertSameBits(String what, float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + ": element " + i + " differs: " + expected[i] + " vs " + actual[i]);
            }
        }
    }

    /** the inputs of one case, padding and offsets filled with values that would show if read. */
    record Operands(float[] a, float[] b, float[] c, int lda, int ldb, int ldc) {
        static Operands random(Case cs, long seed) {
            SplittableRandom rng = new SplittableRandom(seed);
            int aRows = cs.transA ? cs.k : cs.m, aCols = cs.transA ? cs.m : cs.k;
            int bRows = cs.transB ? cs.n : cs.k, bCols = cs.transB ? cs.k : cs.n;
            int lda = aCols + cs.pad, ldb = bCols + cs.pad, ldc = cs.n + cs.pad;
            float[] a = filled(cs.off + aRows * lda, 1e30f);
            float[] b = filled(cs.off + bRows * ldb, 1e30f);
            float[] c = filled(cs.off + cs.m * ldc, Float.NaN);
            fill(a, cs.off, aRows, aCols, lda, rng);
            fill(b, cs.off, bRows, bCols, ldb, rng);
            if (cs.beta != 0f) fill(c, cs.off, cs.m, cs.n, ldc, rng); // beta = 0: C holds NaN
            return new Operands(a, b, c, lda, ldb, ldc);
        }

        private static float[] filled(int size, float junk) {
            float[] x = new float[Math.max(size, 1)];
            java.util.Arrays.fill(x, junk);
            return x;
        }

        private static void fill(float[] x, int off, int rows, int cols, int ld, SplittableRandom rng) {
            for (int r = 0; r < rows; r++) {
                for (int col = 0; col < cols; col++) x[off + r * ld + col] = (float) (rng.nextDouble() * 2 - 1);
            }
        }
    }

    private static void run(Case cs, Operands x, float[] c, Gemm.Loop loop) {
        Gemm.sgemm(cs.transA, cs.transB, cs.m, cs.n, cs.k, cs.alpha, x.a, cs.off, x.lda, x.b, cs.off, x.ldb,
                cs.beta, c, cs.off, x.ldc, loop);
    }

    private static void check(Case cs, Gemm.Loop loop) {
        Operands x = Operands.random(cs, 7L * cs.m + 13L * cs.n + cs.k);
        float[] c = x.c.clone();
        run(cs, x, c, loop);
        for (int i = 0; i < c.length; i++) {
            int rel = i - cs.off;
            boolean inside = rel >= 0 && rel / x.ldc < cs.m && rel % x.ldc < cs.n;
            if (!inside) {
                // outside op(C): untouched, bit for bit
                assertEquals(Float.floatToRawIntBits(x.c[i]), Float.floatToRawIntBits(c[i]), cs + ": wrote outside C at " + i);
                continue;
            }
            int row = rel / x.ldc, col = rel % x.ldc;
            double sum = 0, abs = 0;
            for (int p = 0; p < cs.k; p++) {
                double av = cs.transA ? x.a[cs.off + p * x.lda + row] : x.a[cs.off + row * x.lda + p];
                double bv = cs.transB ? x.b[cs.off + col * x.ldb + p] : x.b[cs.off + p * x.ldb + col];
                sum += av * bv;
                abs += Math.abs(av * bv);
            }
            double prior = cs.beta == 0f ? 0 : (double) cs.beta * x.c[i];
            double want = prior + cs.alpha * sum;
            int roundings = cs.k + 2 * ((cs.k + Gemm.KC - 1) / Gemm.KC) + 2;
            double tol = roundings * U * (Math.abs(cs.alpha) * abs + Math.abs(prior)) + Float.MIN_NORMAL;
            if (!(Math.abs(c[i] - want) <= tol)) {
                fail(cs + ": C[" + row + "," + col + "] = " + c[i] + ", float64 reference " + want + ", tolerance " + tol);
            }
        }
    }
}
