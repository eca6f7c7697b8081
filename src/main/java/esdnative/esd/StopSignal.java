package esdnative.esd;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Ctrl-C during training: the shutdown hook asks the loop to stop and waits until it has saved a checkpoint.
 * While the output is written (the finished training already saved), it says where that is and lets the JVM go.
 */
final class StopSignal {
    private volatile boolean requested;
    private volatile String writingNote;
    private final CountDownLatch saved = new CountDownLatch(1);
    private Thread hook;

    static StopSignal install() {
        StopSignal s = new StopSignal();
        s.hook = new Thread(() -> {
            synchronized (s) {
                s.requested = true;
                if (s.writingNote != null) {
                    System.err.println("\ninterrupted while writing the output; " + s.writingNote);
                    System.err.flush();
                    return;
                }
            }
            try {
                s.saved.await(30, TimeUnit.MINUTES);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "esd-ctrl-c");
        Runtime.getRuntime().addShutdownHook(s.hook);
        return s;
    }

    boolean requested() { return requested; }

    /** From now on Ctrl-C prints {@code note} and exits at once; false when it was pressed already. */
    synchronized boolean writing(String note) {
        if (requested) return false;
        writingNote = note;
        return true;
    }

    /** The loop is done (saved or finished): let a pending shutdown go on, or remove the hook. */
    void release() {
        saved.countDown();
        if (!requested) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // shutdown already under way
            }
        }
    }
}
