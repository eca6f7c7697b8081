package esdnative.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The thread pool: every index exactly once, nested calls included, on any thread count. */
class ParallelTest {

    @Test
    void nestedForEachVisitsEveryIndexOnce() {
        for (int threads : new int[]{1, 3}) {
            AtomicIntegerArray visits = new AtomicIntegerArray(7 * 11);
            Parallel.withThreads(threads, () ->
                    Parallel.forEach(7, i -> Parallel.forEach(11, j -> visits.incrementAndGet(i * 11 + j))));
            for (int i = 0; i < visits.length(); i++) assertEquals(1, visits.get(i), "index " + i + " on " + threads + " threads");
        }
    }

    @Test
    void rangesDependOnlyOnSizeAndGrain() {
        for (int threads : new int[]{1, 4}) {
            long[] starts = new long[4], ends = new long[4];
            Parallel.withThreads(threads, () -> Parallel.forRanges(10, 3, (s, e) -> {
                starts[(int) (s / 3)] = s;
                ends[(int) (s / 3)] = e;
            }));
            assertEquals("[0, 3, 6, 9]", java.util.Arrays.toString(starts));
            assertEquals("[3, 6, 9, 10]", java.util.Arrays.toString(ends));
        }
    }

    @Test
    void withThreadsSetsTheThreadCount() {
        Parallel.withThreads(3, () -> assertEquals(3, Parallel.threads()));
        Parallel.withThreads(1, () -> assertEquals(1, Parallel.threads()));
    }

    @Test
    void threadCountMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> Parallel.withThreads(0, () -> {}));
    }
}
