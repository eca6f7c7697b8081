package esdnative.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The thread pool: every index exactly once, nested and concurrent calls included, on any thread count. */
class ParallelTest {

    /** sizes around the chunking: single index, fewer indices than threads, chunk tails, many chunks */
    private static final int[] SIZES = {1, 2, 3, 5, 7, 8, 9, 31, 100, 1000, 4099};

    @Test
    void forEachVisitsEveryIndexOnce() {
        for (int threads : new int[]{1, 2, 3, 4}) {
            for (int n : SIZES) {
                AtomicIntegerArray visits = new AtomicIntegerArray(n);
                Parallel.withThreads(threads, () -> Parallel.forEach(n, visits::incrementAndGet));
                assertVisitedOnce(visits, n + " indices on " + threads + " threads");
            }
        }
    }

    @Test
    void defaultPoolVisitsEveryIndexOnceOverManyBackToBackLoops() {
        for (int round = 0; round < 2000; round++) {
            int n = SIZES[round % SIZES.length];
            AtomicIntegerArray visits = new AtomicIntegerArray(n);
            Parallel.forEach(n, visits::incrementAndGet);
            assertVisitedOnce(visits, n + " indices, round " + round);
        }
    }

    @Test
    void workersTakeIndicesWhenTheCallerIsSlow() {
        // each body waits until two distinct threads have entered a body: only a second thread can release it
        Set<Thread> seen = ConcurrentHashMap.newKeySet();
        CountDownLatch twoThreads = new CountDownLatch(2);
        Parallel.withThreads(2, () -> Parallel.forEach(2, i -> {
            if (seen.add(Thread.currentThread())) twoThreads.countDown();
            try {
                assertTrue(twoThreads.await(10, TimeUnit.SECONDS), "no second thread took an index");
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }));
        assertEquals(2, seen.size());
    }

    @Test
    void forEachReturnsOnlyWhenEveryBodyHasFinished() {
        // two threads each take one index; the worker's body finishes long after the caller's
        Thread caller = Thread.currentThread();
        CountDownLatch twoThreads = new CountDownLatch(2);
        AtomicIntegerArray finished = new AtomicIntegerArray(2);
        Parallel.withThreads(2, () -> Parallel.forEach(2, i -> {
            twoThreads.countDown();
            try {
                assertTrue(twoThreads.await(10, TimeUnit.SECONDS), "no second thread took an index");
                if (Thread.currentThread() != caller) Thread.sleep(100);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            finished.incrementAndGet(i);
        }));
        assertVisitedOnce(finished, "bodies finished when forEach returned");
    }

    @Test
    void nestedForEachVisitsEveryIndexOnce() {
        for (int threads : new int[]{1, 3}) {
            AtomicIntegerArray visits = new AtomicIntegerArray(7 * 11);
            Parallel.withThreads(threads, () ->
                    Parallel.forEach(7, i -> Parallel.forEach(11, j -> visits.incrementAndGet(i * 11 + j))));
            assertVisitedOnce(visits, "7 × 11 nested on " + threads + " threads");
        }
    }

    @Test
    void nestedForEachRunsInlineOnTheBodysThread() {
        Parallel.withThreads(3, () -> Parallel.forEach(6, i -> {
            Thread outer = Thread.currentThread();
            Parallel.forEach(5, j -> assertSame(outer, Thread.currentThread(), "inner index " + j));
        }));
    }

    @Test
    void smallDeclaredWorkRunsInlineOnTheCaller() {
        Thread caller = Thread.currentThread();
        AtomicIntegerArray visits = new AtomicIntegerArray(64);
        Parallel.forEach(64, Parallel.MIN_PARALLEL_WORK - 1, i -> {
            assertSame(caller, Thread.currentThread());
            visits.incrementAndGet(i);
        });
        assertVisitedOnce(visits, "64 indices of small work");
        List<long[]> ranges = new ArrayList<>();
        Parallel.forRanges(10, 3, Parallel.MIN_PARALLEL_WORK - 1, (s, e) -> {
            assertSame(caller, Thread.currentThread());
            ranges.add(new long[]{s, e});
        });
        assertEquals("[0, 3][3, 6][6, 9][9, 10]", ranges.stream().map(java.util.Arrays::toString).reduce("", String::concat));
    }

    @Test
    void largeDeclaredWorkVisitsEveryIndexOnce() {
        AtomicIntegerArray visits = new AtomicIntegerArray(100);
        Parallel.forEach(100, Parallel.MIN_PARALLEL_WORK, visits::incrementAndGet);
        assertVisitedOnce(visits, "100 indices of large work");
    }

    @Test
    void withThreadsSplitsEvenTinyWork() {
        Set<Thread> seen = ConcurrentHashMap.newKeySet();
        CountDownLatch twoThreads = new CountDownLatch(2);
        Parallel.withThreads(2, () -> Parallel.forEach(2, 1, i -> {
            if (seen.add(Thread.currentThread())) twoThreads.countDown();
            try {
                assertTrue(twoThreads.await(10, TimeUnit.SECONDS), "tiny work was not split");
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }));
    }

    @Test
    void bodyExceptionReachesTheCallerAfterTheOtherBodiesFinish() {
        for (int threads : new int[]{1, 2, 4}) {
            for (int failing : new int[]{0, 57, 99}) {
                IllegalStateException thrown = new IllegalStateException("index " + failing);
                AtomicIntegerArray running = new AtomicIntegerArray(1);
                Parallel.withThreads(threads, () -> {
                    IllegalStateException caught = assertThrows(IllegalStateException.class, () ->
                            Parallel.forEach(100, i -> {
                                running.incrementAndGet(0);
                                try {
                                    if (i == failing) throw thrown;
                                    Thread.onSpinWait();
                                } finally {
                                    running.decrementAndGet(0);
                                }
                            }));
                    assertSame(thrown, caught);
                    assertEquals(0, running.get(0), "a body still running after forEach threw");
                    // the pool still works after a failure
                    AtomicIntegerArray visits = new AtomicIntegerArray(50);
                    Parallel.forEach(50, visits::incrementAndGet);
                    assertVisitedOnce(visits, "after a failure on " + threads + " threads");
                });
            }
        }
    }

    @Test
    void errorsPassThroughUnwrapped() {
        Parallel.withThreads(2, () ->
                assertThrows(StackOverflowError.class, () -> Parallel.forEach(4, i -> {
                    if (i == 3) throw new StackOverflowError("index 3");
                })));
    }

    @Test
    void concurrentCallersFromUnrelatedThreadsEachVisitEveryIndexOnce() throws Exception {
        int callers = 4, rounds = 300, n = 257;
        CyclicBarrier start = new CyclicBarrier(callers);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < callers; c++) {
            Thread t = new Thread(() -> {
                try {
                    start.await();
                    for (int round = 0; round < rounds; round++) {
                        AtomicIntegerArray visits = new AtomicIntegerArray(n);
                        Parallel.forEach(n, visits::incrementAndGet);
                        assertVisitedOnce(visits, Thread.currentThread().getName() + " round " + round);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }, "caller-" + c);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) t.join(TimeUnit.SECONDS.toMillis(60));
        for (Thread t : threads) assertTrue(!t.isAlive(), t.getName() + " did not finish");
        if (failure.get() != null) throw new AssertionError(failure.get());
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
    void rangesCoverTailsAndOversizedGrains() {
        for (long[] nGrain : new long[][]{{1, 1}, {5, 100}, {7, 7}, {100_003, 16_384}, {3, Long.MAX_VALUE}}) {
            long n = nGrain[0], grain = nGrain[1];
            AtomicIntegerArray visits = new AtomicIntegerArray((int) n);
            Parallel.withThreads(3, () -> Parallel.forRanges(n, grain, (s, e) -> {
                assertTrue(s < e && e - s <= grain, "range [" + s + ", " + e + ")");
                for (int i = s; i < e; i++) visits.incrementAndGet(i);
            }));
            assertVisitedOnce(visits, n + " elements in ranges of " + grain);
        }
    }

    @Test
    void rangesMustFitAnArrayAndHaveAPositiveGrain() {
        assertThrows(IllegalArgumentException.class, () -> Parallel.forRanges(1L << 31, 1 << 20, (s, e) -> {}));
        assertThrows(IllegalArgumentException.class, () -> Parallel.forRanges(10, 0, (s, e) -> {}));
    }

    @Test
    void withThreadsSetsTheThreadCount() {
        Parallel.withThreads(3, () -> assertEquals(3, Parallel.threads()));
        Parallel.withThreads(1, () -> assertEquals(1, Parallel.threads()));
        Parallel.withThreads(2, () -> Parallel.withThreads(4, () -> assertEquals(4, Parallel.threads())));
    }

    @Test
    void idleWorkersParkAndWithThreadsWorkersExit() throws InterruptedException {
        List<Thread> workers = new ArrayList<>();
        Parallel.withThreads(5, () -> {
            Parallel.forEach(100, i -> {});
            workers.addAll(workersOfFive());
            assertEquals(4, workers.size(), "workers of a 5-thread pool");
            try {
                Thread.sleep(200); // far beyond the spin time
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            for (Thread w : workers) assertEquals(Thread.State.WAITING, w.getState(), w.getName() + " is not parked");
        });
        for (Thread w : workers) {
            w.join(TimeUnit.SECONDS.toMillis(10));
            assertTrue(!w.isAlive(), w.getName() + " outlived its withThreads");
        }
    }

    private static List<Thread> workersOfFive() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("esd-parallel-") && t.getName().endsWith("-of-5") && t.isAlive())
                .toList();
    }

    @Test
    void threadCountMustBePositive() {
        assertThrows(IllegalArgumentException.class, () -> Parallel.withThreads(0, () -> {}));
    }

    private static void assertVisitedOnce(AtomicIntegerArray visits, String what) {
        for (int i = 0; i < visits.length(); i++) assertEquals(1, visits.get(i), what + ": index " + i);
    }
}
