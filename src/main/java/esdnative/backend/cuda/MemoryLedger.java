package esdnative.backend.cuda;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/**
 * What a {@link CudaAllocator}'s device memory is used for: the bytes in use per label (weights, saved activations,
 * ... as the backend's callers name them), the bytes of free blocks the allocator keeps, and the breakdown at two
 * peaks: of the memory held (in use + kept free: what cuMemAlloc has handed out, the driver's peak) and of the memory
 * in use (what a perfect allocator would need).
 */
final class MemoryLedger {
    /** A breakdown: bytes in use per label, and the bytes kept free. */
    record Snapshot(Map<String, Long> inUse, long free) {
        long inUseBytes() { return inUse.values().stream().mapToLong(Long::longValue).sum(); }

        /** E.g. "12.1 GiB: unet weights 3.2 GiB, saved activations 2.0 GiB, ..., free 1.0 GiB". */
        String describe() {
            StringJoiner parts = new StringJoiner(", ", gib(inUseBytes() + free) + ": ", "");
            inUse.forEach((label, bytes) -> {
                if (bytes > 0) parts.add(label + " " + gib(bytes));
            });
            return parts.add("free " + gib(free)).toString();
        }
    }

    private final Map<String, Long> inUse = new LinkedHashMap<>();
    private long inUseBytes;
    private long freeBytes;
    private long heldPeak;
    private long inUseAtHeldPeak;
    private long inUsePeak;
    private Snapshot atHeldPeak = new Snapshot(Map.of(), 0);
    private Snapshot atInUsePeak = new Snapshot(Map.of(), 0);

    /** {@code bytes} more (or, negative, fewer) in use under {@code label}. */
    void inUse(String label, long bytes) {
        inUse.merge(label, bytes, Long::sum);
        inUseBytes += bytes;
    }

    /** {@code bytes} more (or, negative, fewer) kept free. */
    void free(long bytes) {
        freeBytes += bytes;
    }

    /**
     * Records the breakdown when the memory held or in use is at a new peak (call after each allocation); of the
     * moments that hold the most, the one with the most in use (the least free) tells what the peak is made of.
     */
    void notePeaks() {
        long held = inUseBytes + freeBytes;
        if (held > heldPeak || held == heldPeak && inUseBytes > inUseAtHeldPeak) {
            heldPeak = held;
            inUseAtHeldPeak = inUseBytes;
            atHeldPeak = snapshot();
        }
        if (inUseBytes > inUsePeak) {
            inUsePeak = inUseBytes;
            atInUsePeak = snapshot();
        }
    }

    long inUseBytes() { return inUseBytes; }

    long freeBytes() { return freeBytes; }

    long inUsePeak() { return inUsePeak; }

    /** The breakdown when in use + free was highest. */
    Snapshot atHeldPeak() { return atHeldPeak; }

    /** The breakdown when the memory in use was highest. */
    Snapshot atInUsePeak() { return atInUsePeak; }

    private Snapshot snapshot() {
        return new Snapshot(new LinkedHashMap<>(inUse), freeBytes);
    }

    static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
}
