package esdnative.util;

import java.io.PrintStream;

/**
 * A one-line progress display on stderr: "[12/1000] loss 0.0123 | 1.23 it/s | ETA 13:20". Redrawn in place on a
 * terminal; elsewhere (logs, CI) a line every {@code every} updates and at the end.
 */
public final class ProgressBar {
    private final PrintStream out;
    private final int total;
    private final boolean terminal;
    private final int every;
    private final long started = System.nanoTime();

    public ProgressBar(PrintStream out, int total) {
        this.out = out;
        this.total = total;
        this.terminal = System.console() != null;
        this.every = Math.max(1, total / 20);
    }

    /** Shows that {@code done} of {@code total} are finished, with an extra note such as "loss 0.0123". */
    public void update(int done, int sinceStart, String note) {
        if (!terminal && done % every != 0 && done != total) return;
        double seconds = (System.nanoTime() - started) / 1e9;
        double rate = sinceStart / Math.max(seconds, 1e-9);
        long eta = Math.round((total - done) / Math.max(rate, 1e-9));
        String line = String.format("[%d/%d] %s | %.2f it/s | ETA %d:%02d", done, total, note, rate, eta / 60, eta % 60);
        if (terminal) {
            out.print("\r" + line + "   ");
            if (done == total) out.println();
        } else {
            out.println(line);
        }
        out.flush();
    }
}
