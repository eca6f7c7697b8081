package esdnative.backend.cpu;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * The blocked matrix product behind the convolutions: C[m, n] = initial-or-C + A[m, kdim] · B[kdim, n], where a
 * subclass packs 4-row strips of A and rows of B straight from the tensors (so no column matrix is materialised and
 * packed a second time) and says how a row of C is loaded into and stored from the accumulator (so a bias, a
 * permuted layout or += semantics cost no extra pass).
 *
 * <p>Blocking: columns are cut into equal blocks of at most {@link #NC}, the reduction into equal k-blocks of
 * about {@link #PANEL_FLOATS} / block width rows (the packed panel stays in L2). A task owns rows × one column
 * block (or all of them, see {@link #storesSpanRows}) and runs every k-block in ascending order through
 * {@link GemmKernel}, packing its own panel. Rows are split into several tasks when there are too few column blocks
 * to share out (the tasks of one block then each pack the panel: a copy per panel element against rows-per-task
 * multiply-adds).
 *
 * <p>Deterministic: each element of C is computed by the same sequence (an fma chain per k-block, k-blocks in
 * ascending order) whose blocks depend on the shape alone; the thread count only decides how rows are grouped into
 * tasks, which does not change any element's arithmetic.
 */
abstract class ConvProduct {
    /** columns per block at most: a 4 × NC accumulator (8 KiB) stays in L1. */
    static final int NC = 512;
    /** k-block rows × block width at most: the packed panel (512 KiB) stays in L2. */
    static final int PANEL_FLOATS = 1 << 17;
    /** multiply-adds below which a product runs on the calling thread: a fork costs more than a second core saves. */
    static final long SPLIT_MIN_WORK = 1L << 21;
    /** tasks per thread to aim for, so that work still balances when a core is busy elsewhere... */
    static final int TASKS_PER_THREAD = 4;
    /**
     * ...but rows are cut into tasks of fewer rows than this only to give every thread one: each task packs its panel,
     * and a gathered (strided) panel element costs as much as a few dozen multiply-adds.
     */
    static final int MIN_TASK_ROWS = 128;

    private static final int MR = GemmKernel.MR, KU = GemmKernel.KU;

    // per-thread scratch: a task never forks, so it is never re-entered on its thread
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        float[][] panel = new float[0][];
        int panelWidth;
        float[] aPack = new float[0];
        final float[][] acc = new float[MR][NC];
    }

    final int m, n, kdim;

    ConvProduct(int m, int n, int kdim) {
        this.m = m;
        this.n = n;
        this.kdim = kdim;
    }

    /**
     * aPack[p·MR + r] = A(row0 + r, p0 + p) for r < rows, p < kc. The rest comes zeroed; a packer may fill the lanes
     * r ≥ rows with anything, as their sums are never stored.
     */
    abstract void packStrip(int row0, int rows, int p0, int kc, float[] aPack);

    /** panel[p][j] = B(p0 + p, col0 + j) for p < kc, j < width. */
    abstract void packPanel(int p0, int kc, int col0, int width, float[][] panel);

    /**
     * acc[j] = what the k-block's sums for row {@code row} of C start from at column col0 + j, j < width: the initial
     * value (a bias, zero, or C itself for +=) on the first k-block and C on later ones, or zero on every k-block
     * when {@link #storeRow} adds.
     */
    abstract void loadRow(int row, int col0, int width, float[] acc, boolean firstBlock);

    /** puts acc[j] back into row {@code row} of C at column col0 + j, j < width: a copy, or an add (see loadRow). */
    abstract void storeRow(int row, int col0, int width, float[] acc);

    /**
     * Whether storing one column block writes all over its rows of C (a permuted layout): then a task owns whole rows,
     * every column block, so that two threads never write the same cache lines.
     */
    boolean storesSpanRows() { return false; }

    /** Computes C, on the calling thread or split into tasks across the pool. */
    final void run() {
        int colBlocks = ceilDiv(n, NC), width = ceilDiv(n, colBlocks);
        int kcMax = Math.max(KU, PANEL_FLOATS / width / KU * KU);
        int kc = roundUp(ceilDiv(kdim, ceilDiv(kdim, kcMax)), KU);
        int blocksPerTask = storesSpanRows() ? colBlocks : 1, blockTasks = colBlocks / blocksPerTask;
        int threads = Parallel.threads();
        boolean split = threads > 1 && (long) m * n * kdim >= SPLIT_MIN_WORK;
        int rowGroups = !split ? 1 : Math.min(ceilDiv(m, MR), Math.max(ceilDiv(threads, blockTasks),
                Math.min(ceilDiv(TASKS_PER_THREAD * threads, blockTasks), m / MIN_TASK_ROWS)));
        int rowsPerTask = roundUp(ceilDiv(m, rowGroups), MR);
        int rowTasks = ceilDiv(m, rowsPerTask);
        IntConsumer task = t -> {
            int row0 = t % rowTasks * rowsPerTask, rowEnd = Math.min(m, row0 + rowsPerTask);
            for (int cb = t / rowTasks * blocksPerTask, end = cb + blocksPerTask; cb < end; cb++) {
                block(row0, rowEnd, cb * width, Math.min(width, n - cb * width), kc);
            }
        };
        if (split) {
            Parallel.forEach(blockTasks * rowTasks, task);
        } else {
            for (int t = 0; t < blockTasks * rowTasks; t++) task.accept(t);
        }
    }

    /** Rows [row0, rowEnd) × columns [col0, col0 + width) of C, every k-block (of kcMax rows) in order. */
    private void block(int row0, int rowEnd, int col0, int width, int kcMax) {
        Scratch s = SCRATCH.get();
        float[][] panel = panel(s, kcMax, width);
        if (s.aPack.length < kcMax * MR) s.aPack = new float[kcMax * MR];
        float[] aPack = s.aPack;
        float[][] acc = s.acc;
        for (int p0 = 0; p0 < kdim; p0 += kcMax) {
            int kc = Math.min(kcMax, kdim - p0), kcPad = roundUp(kc, KU);
            packPanel(p0, kc, col0, width, panel);
            for (int p = kc; p < kcPad; p++) Arrays.fill(panel[p], 0, width, 0f);
            for (int i = row0; i < rowEnd; i += MR) {
                int strip = Math.min(MR, rowEnd - i);
                if (strip < MR || kc < kcPad) Arrays.fill(aPack, 0, kcPad * MR, 0f);
                packStrip(i, strip, p0, kc, aPack);
                for (int r = 0; r < strip; r++) loadRow(i + r, col0, width, acc[r], p0 == 0);
                GemmKernel.accumulate(acc, aPack, panel, width, kcPad);
                for (int r = 0; r < strip; r++) storeRow(i + r, col0, width, acc[r]);
            }
        }
    }

    /** the scratch panel with at least rows × width floats, grown when a product needs more and then reused. */
    private static float[][] panel(Scratch s, int rows, int width) {
        if (s.panel.length < rows || s.panelWidth < width) {
            s.panelWidth = Math.max(s.panelWidth, width);
            s.panel = new float[Math.max(s.panel.length, rows)][s.panelWidth];
        }
        return s.panel;
    }

    static int ceilDiv(int x, int y) { return (x + y - 1) / y; }

    private static int roundUp(int x, int multiple) { return ceilDiv(x, multiple) * multiple; }
}
