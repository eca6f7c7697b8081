package esdnative.backend.cpu;

import esdnative.backend.cpu.GemmPack.Operand;

import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.function.IntConsumer;

/**
 * Row-major single-precision GEMM on Java arrays: C = alpha · op(A) · op(B) + beta · C,
 * op(A) [m, k], op(B) [k, n], C [m, n]; lda/ldb/ldc are row strides as stored. beta = 0 overwrites C
 * (NaN there is ignored).
 *
 * <p>Blocked in the Goto/BLIS way: k is cut into blocks of at most {@link #KC}; per block, op(B) is packed
 * into a panel of row arrays (shared, L2-sized per task), then tasks of {@link #MC} rows × {@link #NC}
 * columns of C pack 4-row strips of op(A) and run {@link GemmKernel}. Tasks split M and N only; a product of
 * fewer than {@link Parallel#MIN_PARALLEL_WORK} multiply-adds runs its tasks on the calling thread.
 * A skinny product (n < {@link #SKINNY_N}, m > n) is computed as Cᵀ = op(B)ᵀ · op(A)ᵀ so the kernel's
 * vectorised rows run along m. Panels and scratch are reused, so steady-state calls allocate no buffers.
 *
 * <p>Deterministic: the k-blocks depend on k alone, each block's partial sums are formed in a fixed order,
 * and blocks are added to C in ascending order by the one task that owns the element, so results are
 * identical for any thread count (the task sizes may follow the thread count; the sums do not).
 */
public final class Gemm {
    /** k-block: a KC × NC block of the packed panel (512 KiB) stays in L2 while a task sweeps its rows. */
    static final int KC = 256;
    /** columns of C per task: a 4 × NC accumulator tile (8 KiB) stays in L1. */
    static final int NC = 512;
    /** rows of C per task at most; fewer when that leaves threads idle. */
    static final int MC = 64;
    /** compute tasks per thread to aim for, so uneven tasks still balance. */
    static final int TASKS_PER_THREAD = 4;
    /** columns of op(B) packed per pass, in NC-wide blocks; bounds the panel at KC × N_PANEL floats (2 MiB). */
    static final int N_PANEL = 2048;
    /** n below which (with m > n) the transposed problem Cᵀ = op(B)ᵀ·op(A)ᵀ is computed: wide rows vectorise. */
    static final int SKINNY_N = 64;

    /** Runs body(t) for t in [0, n): Parallel.forEach given the product's multiply-adds, or a serial loop in tests. */
    interface Loop {
        void forEach(int n, IntConsumer body);
    }

    // packed op(B) panels [N_PANEL / NC blocks][KC rows][≤ NC], reused across calls; a pool rather than
    // per-thread because a panel is shared by the tasks of one call, and calls may run at once on unrelated threads
    private static final ConcurrentLinkedDeque<float[][][]> PANELS = new ConcurrentLinkedDeque<>();

    // per-thread task scratch: a task never blocks, so it is never re-entered on its thread
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        final float[] aPack = new float[KC * GemmKernel.MR];
        final float[][] acc = new float[GemmKernel.MR][NC];
        final float[] cRow = new float[NC];
    }

    private Gemm() {}

    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                             float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                             float beta, float[] c, int cOff, int ldc) {
        long multiplyAdds = (long) m * n * k;
        sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc,
                (tasks, body) -> Parallel.forEach(tasks, multiplyAdds, body));
    }

    static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                      float[] a, int aOff, int lda, float[] b, int bOff, int ldb,
                      float beta, float[] c, int cOff, int ldc, Loop loop) {
        if (m <= 0 || n <= 0) return;
        Operand opA = Operand.of(transA, a, aOff, lda);
        Operand opB = Operand.of(transB, b, bOff, ldb);
        Operand opC = new Operand(c, cOff, ldc, 1);
        if (k <= 0) {
            scale(m, n, beta, opC);
        } else if (n < SKINNY_N && m > n) {
            blocked(n, m, k, alpha, opB.transposed(), opA.transposed(), beta, opC.transposed(), loop);
        } else {
            blocked(m, n, k, alpha, opA, opB, beta, opC, loop);
        }
    }

    /** C = beta · C (k = 0). */
    private static void scale(int m, int n, float beta, Operand c) {
        float[] cd = c.data();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                int at = c.off() + i * c.rowStride() + j * c.colStride();
                cd[at] = beta == 0f ? 0f : beta * cd[at];
            }
        }
    }

    private static void blocked(int m, int n, int k, float alpha, Operand a, Operand b, float beta, Operand c,
                                Loop loop) {
        // equal k-blocks of at most KC, a function of k only (determinism)
        int kBlocks = ceilDiv(k, KC);
        int kcMax = ceilDiv(k, kBlocks);
        float[][][] panel = acquirePanel();
        try {
            for (int col0 = 0; col0 < n; col0 += N_PANEL) {
                int width = Math.min(N_PANEL, n - col0);
                for (int kb = 0; kb < kBlocks; kb++) {
                    int p0 = kb * kcMax, kc = Math.min(kcMax, k - p0);
                    int kcPad = ceilDiv(kc, GemmKernel.KU) * GemmKernel.KU;
                    int colBlocks = ceilDiv(width, NC);
                    int c0 = col0;
                    loop.forEach(colBlocks, t -> {
                        int j = t * NC, w = Math.min(NC, width - j);
                        GemmPack.packPanel(b, p0, kc, kcPad, c0 + j, w, ensureRows(panel, t, kcPad, w));
                    });
                    boolean firstBlock = kb == 0;
                    int mc = rowsPerTask(m, colBlocks);
                    int rowTasks = ceilDiv(m, mc);
                    loop.forEach(rowTasks * colBlocks, t -> {
                        int i = (t / colBlocks) * mc, cb = t % colBlocks, j = cb * NC;
                        task(a, c, panel[cb], i, Math.min(mc, m - i), c0 + j, Math.min(NC, width - j), p0, kc, kcPad,
                                alpha, beta, firstBlock);
                    });
                }
            }
        } finally {
            PANELS.push(panel);
        }
    }

    /** rows per task: MC, or fewer (a multiple of the kernel's rows) to give every thread several tasks. */
    private static int rowsPerTask(int m, int colBlocks) {
        int wantRowTasks = ceilDiv(TASKS_PER_THREAD * Parallel.threads(), colBlocks);
        int rows = ceilDiv(ceilDiv(m, wantRowTasks), GemmKernel.MR) * GemmKernel.MR;
        return Math.min(MC, rows);
    }

    /** rows [row0, row0 + rows) × columns [col, col + width) of C for one k-block; panel holds those columns. */
    private static void task(Operand a, Operand c, float[][] panel, int row0, int rows, int col, int width,
                             int p0, int kc, int kcPad, float alpha, float beta, boolean firstBlock) {
        Scratch s = SCRATCH.get();
        final int mr = GemmKernel.MR;
        for (int i = row0; i < row0 + rows; i += mr) {
            int strip = Math.min(mr, row0 + rows - i);
            GemmPack.packStrip(a, i, strip, p0, kc, kcPad, s.aPack);
            for (float[] accRow : s.acc) Arrays.fill(accRow, 0, width, 0f);
            GemmKernel.accumulate(s.acc, s.aPack, panel, width, kcPad);
            store(s.acc, strip, s.cRow, c, i, col, width, alpha, beta, firstBlock);
        }
    }

    /** C(row + r, col + j) = (first k-block ? beta·C : C) + alpha · acc[r][j] for r < strip, j < width. */
    private static void store(float[][] acc, int strip, float[] cRow, Operand c, int row, int col, int width,
                              float alpha, float beta, boolean firstBlock) {
        float[] cd = c.data();
        int rs = c.rowStride(), cs = c.colStride();
        if (cs == 1) {
            for (int r = 0; r < strip; r++) {
                storeRow(acc[r], cRow, cd, c.off() + (row + r) * rs + col, width, alpha, beta, firstBlock);
            }
        } else {
            // C is stored transposed (skinny path): the strip's rows are adjacent in memory, so walk j outside
            for (int j = 0; j < width; j++) {
                int base = c.off() + row * rs + (col + j) * cs;
                for (int r = 0; r < strip; r++) {
                    int at = base + r * rs;
                    float prior = !firstBlock ? cd[at] : beta == 0f ? 0f : beta * cd[at];
                    cd[at] = prior + alpha * acc[r][j];
                }
            }
        }
    }

    /**
     * cd[base + j] = (first k-block ? beta·cd : cd) + alpha · acc[j] for j < width, through cRow by arraycopy so
     * the arithmetic loops index every array by the same j (C2 vectorises them).
     */
    private static void storeRow(float[] acc, float[] cRow, float[] cd, int base, int width, float alpha, float beta,
                                 boolean firstBlock) {
        if (firstBlock && beta == 0f) {
            for (int j = 0; j < width; j++) acc[j] *= alpha;
            System.arraycopy(acc, 0, cd, base, width);
            return;
        }
        System.arraycopy(cd, base, cRow, 0, width);
        if (firstBlock) {
            for (int j = 0; j < width; j++) cRow[j] = beta * cRow[j] + alpha * acc[j];
        } else {
            for (int j = 0; j < width; j++) cRow[j] += alpha * acc[j];
        }
        System.arraycopy(cRow, 0, cd, base, width);
    }

    private static float[][][] acquirePanel() {
        float[][][] panel = PANELS.poll();
        return panel != null ? panel : new float[N_PANEL / NC][KC][];
    }

    /** makes the first kcPad rows of column block cb at least width long (grown once, then reused). */
    private static float[][] ensureRows(float[][][] panel, int cb, int kcPad, int width) {
        float[][] rows = panel[cb];
        for (int p = 0; p < kcPad; p++) {
            if (rows[p] == null || rows[p].length < width) rows[p] = new float[width];
        }
        return rows;
    }

    private static int ceilDiv(int x, int y) { return (x + y - 1) / y; }
}
