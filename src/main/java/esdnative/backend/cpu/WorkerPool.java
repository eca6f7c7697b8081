package esdnative.backend.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * A fixed team of threads for {@link Parallel}: {@code threads − 1} daemon workers plus the calling thread, which
 * works too. One loop runs at a time: the caller publishes it as a {@link Job}, and every thread takes chunks of
 * consecutive indices from the job's atomic counter until none are left, so body(i) runs exactly once per i, on
 * whichever thread claimed it.
 *
 * <p>Cheap dispatch: after its last chunk a worker spins ({@link Thread#onSpinWait}) for {@link #SPIN_NANOS}
 * before parking, so back-to-back loops find it awake and a dispatch costs a few cache-line transfers; an idle
 * program parks every worker. A loop started while the team is busy — nested in a body, on a worker, or from an
 * unrelated thread — runs inline on its own thread.
 */
final class WorkerPool {
    /**
     * how long an idle worker, or a caller waiting for the last chunks, spins before parking: over 90% of the
     * gaps between the loops of a tiny-sd-a UNet forward are shorter
     */
    static final long SPIN_NANOS = 100_000;
    /** chunks per thread a loop is cut into: small enough to balance uneven bodies, large enough to claim rarely */
    private static final int CHUNKS_PER_THREAD = 4;

    final int threads;
    /** loops whose caller-estimated work is below this run inline */
    final long minWork;
    private final Worker[] workers;
    /** taken by the one caller whose loop the team runs */
    private final AtomicBoolean busy = new AtomicBoolean();
    /** the latest loop; each worker runs every job it sees, once */
    private volatile Job job;
    private volatile boolean shutDown;

    WorkerPool(int threads, long minWork) {
        if (threads <= 0) throw new IllegalArgumentException("threads must be positive, got " + threads);
        this.threads = threads;
        this.minWork = minWork;
        workers = new Worker[threads - 1];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = new Worker(this, w + 1);
            workers[w].start();
        }
    }

    /** Runs body(i) for i in [0, n) on the team, or inline when the team is one thread or busy. */
    void forEach(int n, IntConsumer body) {
        if (n <= 0) return;
        if (n == 1 || threads == 1 || Thread.currentThread() instanceof Worker || !busy.compareAndSet(false, true)) {
            for (int i = 0; i < n; i++) body.accept(i);
            return;
        }
        Job j = new Job(n, Math.max(1, n / (threads * CHUNKS_PER_THREAD)), body, Thread.currentThread());
        try {
            job = j;
            for (Worker w : workers) {
                if (w.parked) {
                    w.parked = false; // one unpark per park, however long the worker takes to wake
                    LockSupport.unpark(w);
                }
            }
            j.work();
            j.awaitDone();
        } finally {
            j.release();
            busy.set(false);
        }
        j.rethrowFailure();
    }

    /** Stops the workers (they exit once idle); the pool must not be used afterwards. */
    void shutDown() {
        shutDown = true;
        for (Worker w : workers) LockSupport.unpark(w);
    }

    /** One forEach: its indices, handed out in chunks, and how many are done. */
    private static final class Job {
        final int n, chunk;
        final Thread caller;
        /** the next index to hand out; a long, as every thread's last claim overshoots n */
        final AtomicLong next = new AtomicLong();
        final AtomicInteger done = new AtomicInteger();
        /** cleared once the loop is over, so an idle worker holding the job keeps nothing alive */
        IntConsumer body;
        volatile Throwable failure;
        volatile boolean callerParked;

        Job(int n, int chunk, IntConsumer body, Thread caller) {
            this.n = n;
            this.chunk = chunk;
            this.body = body;
            this.caller = caller;
        }

        /** Claims and runs chunks until none are left; after a failure, claims the rest without running them. */
        void work() {
            long claimed;
            while ((claimed = next.getAndAdd(chunk)) < n) {
                int start = (int) claimed, end = (int) Math.min(n, claimed + chunk);
                if (failure == null) {
                    IntConsumer b = body;
                    try {
                        for (int i = start; i < end; i++) b.accept(i);
                    } catch (Throwable t) {
                        if (failure == null) failure = t;
                    }
                }
                if (done.addAndGet(end - start) == n && callerParked) LockSupport.unpark(caller);
            }
        }

        /** Caller: waits until every claimed chunk has finished (spinning first, as workers finish soon). */
        void awaitDone() {
            boolean interrupted = false;
            long spinStart = System.nanoTime();
            while (done.get() < n) {
                if (System.nanoTime() - spinStart < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                callerParked = true;
                if (done.get() < n) LockSupport.park(this);
                callerParked = false;
                interrupted |= Thread.interrupted();
            }
            if (interrupted) caller.interrupt();
        }

        void release() { body = null; }

        void rethrowFailure() {
            Throwable t = failure;
            if (t == null) return;
            if (t instanceof RuntimeException e) throw e;
            if (t instanceof Error e) throw e;
            throw new RuntimeException(t); // a checked exception thrown sneakily by a body
        }
    }

    private static final class Worker extends Thread {
        private final WorkerPool pool;
        volatile boolean parked;

        Worker(WorkerPool pool, int index) {
            super("esd-parallel-" + index + "-of-" + pool.threads);
            this.pool = pool;
            setDaemon(true);
        }

        @Override
        public void run() {
            Job seen = null;
            long idleSince = System.nanoTime();
            while (!pool.shutDown) {
                Job j = pool.job;
                if (j != seen) {
                    seen = j;
                    j.work();
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    parked = true;
                    if (pool.job == seen && !pool.shutDown) LockSupport.park(pool);
                    parked = false;
                    idleSince = System.nanoTime();
                }
            }
        }
    }
}
