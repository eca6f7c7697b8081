package esdnative.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's peak resident memory (Linux /proc/self/status VmHWM), for the memory figures of a benchmark. */
final class PeakMemory {
    private PeakMemory() {}

    /** Peak resident set in bytes, or -1 where /proc is not available. */
    static long peakResidentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    // "VmHWM:   123456 kB"
                    String[] parts = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    static String format(long bytes) {
        if (bytes < 0) return "unknown";
        return String.format("%.2f GiB", bytes / (double) (1L << 30));
    }
}
