package esdnative.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The CPU backend's threads. Work is split into independent index ranges, each computed the same way by
 * whichever thread takes it, so results never depend on the thread count (determinism).
 * Threads: $ESD_THREADS, else the number of available processors; {@link #withThreads} overrides it for a
 * piece of work (tests compare 1 thread against several).
 */
public final class Parallel {
    private static final ForkJoinPool POOL = new ForkJoinPool(defaultThreads());

    /** the pool of the innermost withThreads call on this thread, when there is one */
    private static final ScopedValue<ForkJoinPool> OVERRIDE = ScopedValue.newInstance();

    private Parallel() {}

    /** Threads that work started from the calling thread would use. */
    public static int threads() { return currentPool().getParallelism(); }

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

    /** Runs {@code work} with every {@link #forEach} it starts (nested ones included) on {@code threads} threads. */
    public static void withThreads(int threads, Runnable work) {
        if (threads <= 0) throw new IllegalArgumentException("threads must be positive, got " + threads);
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            ScopedValue.where(OVERRIDE, pool).run(work);
        } finally {
            pool.shutdown();
        }
    }

    /** Runs body(i) for i in [0, n), in parallel when n > 1; each i must write disjoint outputs. */
    public static void forEach(int n, IntConsumer body) {
        if (n <= 0) return;
        if (ForkJoinTask.inForkJoinPool()) {
            // nested call from a worker: fork into the worker's own pool
            if (n == 1 || ForkJoinTask.getPool().getParallelism() == 1) {
                for (int i = 0; i < n; i++) body.accept(i);
            } else {
                IntStream.range(0, n).parallel().forEach(body);
            }
            return;
        }
        ForkJoinPool pool = currentPool();
        if (n == 1 || pool.getParallelism() == 1) {
            for (int i = 0; i < n; i++) body.accept(i);
            return;
        }
        pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
    }

    /** A body over the element range [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void accept(long start, long end);
    }

    /**
     * Runs body over [0, n) cut into consecutive ranges of {@code grain} elements (the last may be shorter).
     * The cut depends only on n and grain, never on the thread count, so per-range partial results
     * combined in range order are deterministic.
     */
    public static void forRanges(long n, long grain, RangeBody body) {
        if (n <= 0) return;
        long chunks = (n + grain - 1) / grain;
        if (chunks > Integer.MAX_VALUE) throw new IllegalArgumentException("grain " + grain + " too small for " + n);
        forEach((int) chunks, i -> body.accept(i * grain, Math.min(n, (i + 1) * grain)));
    }

    private static ForkJoinPool currentPool() {
        return OVERRIDE.isBound() ? OVERRIDE.get() : POOL;
    }
}
