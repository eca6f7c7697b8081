package esdnative.backend.cpu;

import java.util.function.IntConsumer;

/**
 * The CPU backend's threads. Work is split into independent index ranges, each computed the same way by
 * whichever thread takes it, so results never depend on the thread count (determinism).
 * Threads: $ESD_THREADS, else the number of available processors; {@link #withThreads} overrides it for a
 * piece of work (tests compare 1 thread against several). Loops run on a {@link WorkerPool}; one started from
 * inside a running body, or while another thread's loop holds the pool, runs inline.
 */
public final class Parallel {
    /**
     * Work below which a loop runs inline: waking a second core and moving half the data to its cache costs more
     * than such a loop takes (about 10 µs on one core). Work is counted in floats streamed through a vectorised
     * loop, or multiply-adds; callers count an element that costs more (an ordered double sum, double-precision
     * statistics, exp) as several.
     */
    static final long MIN_PARALLEL_WORK = 1 << 15;
    /** work of an element added to an ordered double sum: one add's latency rather than a vector lane's */
    static final int SERIAL_SUM_WORK = 4;

    private static final WorkerPool POOL = new WorkerPool(defaultThreads(), MIN_PARALLEL_WORK);

    /** the pool of the innermost withThreads call on this thread, when there is one */
    private static final ScopedValue<WorkerPool> OVERRIDE = ScopedValue.newInstance();

    private Parallel() {}

    /** Threads that work started from the calling thread would use. */
    public static int threads() { return currentPool().threads; }

    static int defaultThreads() {
        String env = System.getenv("ESD_THREADS");
        if (env != null && !env.isBlank()) {
            try {
                int t = Integer.parseInt(env.trim());
                if (t > 0) return t;
            } catch (NumberFormatException ignored) {
                // fall through to the processor count
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * Runs {@code work} with every {@link #forEach} it starts on a pool of {@code threads} threads of its own.
     * That pool splits every loop of more than one index, however little work it declares, so tests exercise
     * the parallel paths on small shapes.
     */
    public static void withThreads(int threads, Runnable work) {
        WorkerPool pool = new WorkerPool(threads, 0);
        try {
            ScopedValue.where(OVERRIDE, pool).run(work);
        } finally {
            pool.shutDown();
        }
    }

    /**
     * Runs body(i) for i in [0, n), in parallel when n > 1; each i must write disjoint outputs. An exception
     * thrown by a body reaches the caller once every started body has finished.
     */
    public static void forEach(int n, IntConsumer body) {
        currentPool().forEach(n, body);
    }

    /**
     * As {@link #forEach(int, IntConsumer)}, but inline on the calling thread when the whole loop's {@code work}
     * (see {@link #MIN_PARALLEL_WORK}) is too small to pay for a dispatch.
     */
    public static void forEach(int n, long work, IntConsumer body) {
        WorkerPool pool = currentPool();
        if (work < pool.minWork) {
            for (int i = 0; i < n; i++) body.accept(i);
        } else {
            pool.forEach(n, body);
        }
    }

    /**
     * A body over the element range [start, end). The bounds are ints so that a loop {@code for (int i = start;
     * i < end; i++)} is a counted int loop, which C2 vectorises (a long bound would keep it scalar).
     */
    @FunctionalInterface
    public interface RangeBody {
        void accept(int start, int end);
    }

    /**
     * Runs body over [0, n) cut into consecutive ranges of {@code grain} elements (the last may be shorter).
     * The cut depends only on n and grain, never on the thread count, so per-range partial results
     * combined in range order are deterministic. The work is taken to be n; n must fit an int (an array index).
     */
    public static void forRanges(long n, long grain, RangeBody body) {
        forRanges(n, grain, n, body);
    }

    /** As {@link #forRanges(long, long, RangeBody)}, with the whole loop's work as {@link #forEach(int, long, IntConsumer)} takes it. */
    public static void forRanges(long n, long grain, long work, RangeBody body) {
        if (n <= 0) return;
        if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("range of " + n + " elements exceeds an array");
        if (grain <= 0) throw new IllegalArgumentException("grain must be positive, got " + grain);
        int size = (int) n, step = (int) Math.min(grain, n);
        int chunks = (int) ((n + step - 1) / step);
        forEach(chunks, work, i -> body.accept(i * step, (int) Math.min(size, (long) (i + 1) * step)));
    }

    private static WorkerPool currentPool() {
        return OVERRIDE.isBound() ? OVERRIDE.get() : POOL;
    }
}
