package esdnative.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The CPU backend's threads. Work is split into independent index ranges, each computed the same way by
 * whichever thread takes it, so results never depend on the thread count (determinism).
 * Threads: $ESD_THREADS, else the number of available processors.
 */
public final class Parallel {
    private static final ForkJoinPool POOL = new ForkJoinPool(defaultThreads());

    private Parallel() {}

    public static int threads() { return POOL.getParallelism(); }

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

    /** Runs body(i) for i in [0, n), in parallel when n > 1; each i must write disjoint outputs. */
    public static void forEach(int n, IntConsumer body) {
        if (n <= 0) return;
        if (n == 1 || POOL.getParallelism() == 1) {
            for (int i = 0; i < n; i++) body.accept(i);
            return;
        }
        POOL.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
    }
}
