package esdnative.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's peak resident memory, from Linux's /proc/self/status (VmHWM). */
public final class PeakMemory {
    private PeakMemory() {}

    /** Peak resident set size in bytes, or -1 where /proc is not there. */
    public static long bytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** E.g. "1.23 GiB", or "unknown". */
    public static String describe() {
        long b = bytes();
        return b < 0 ? "unknown" : String.format("%.2f GiB", b / (double) (1L << 30));
    }
}
