package esdnative.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The process's peak resident memory, from Linux's /proc/self/status (VmHWM). */
public final class PeakMemory {
    private PeakMemory() {}

    /** Peak resident set size in bytes, or -1 where /proc is not there. */
    public static long bytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                // "VmHWM:   123456 kB"
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** The peak, e.g. "1.23 GiB", or "unknown". */
    public static String describe() {
        return format(bytes());
    }

    /** A byte count in GiB, e.g. "1.23 GiB"; "unknown" when negative. */
    public static String format(long bytes) {
        return bytes < 0 ? "unknown" : String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
}
