package esdnative.backend.cuda;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where the elements of a storage live once weights in it were frozen into bfloat16
 * ({@link CudaBackend#freezeWeights}): the frozen ranges packed, in order, into one bfloat16 block, every other
 * element (biases, norm scales, ...) packed into one float32 block. Element offsets stay the storage's, so every
 * view of it keeps working: a float32 view finds its place in the float32 block, a frozen matrix its place in the
 * bfloat16 block, and a view that is neither wholly one nor the other is refused.
 */
final class FrozenLayout {
    private static final int BF16_BYTES = 2;

    /** First element of each run, ascending from 0; the runs cover the storage, alternating float32 and frozen. */
    private final long[] starts;
    private final boolean[] frozen;
    private final long capacity;
    /** Device address of each run's first element; set by {@link #place}. */
    private final long[] addresses;

    private FrozenLayout(long[] starts, boolean[] frozen, long capacity) {
        this.starts = starts;
        this.frozen = frozen;
        this.capacity = capacity;
        this.addresses = new long[starts.length];
    }

    /**
     * The layout of a storage of {@code capacity} elements whose ranges {@code [start, end)} (any order; overlapping
     * or adjacent ones merge) are frozen.
     */
    static FrozenLayout of(long capacity, List<long[]> ranges) {
        List<long[]> sorted = new ArrayList<>(ranges);
        sorted.sort((x, y) -> Long.compare(x[0], y[0]));
        List<Long> starts = new ArrayList<>();
        List<Boolean> frozen = new ArrayList<>();
        long end = 0;   // end of the runs so far
        for (long[] r : sorted) {
            if (r[0] < 0 || r[1] > capacity || r[0] > r[1]) {
                throw new IllegalArgumentException("range " + Arrays.toString(r) + " outside a storage of " + capacity);
            }
            if (r[0] == r[1]) continue;
            if (r[0] > end) {                                   // a float32 gap before it
                starts.add(end);
                frozen.add(false);
            } else if (!starts.isEmpty() && frozen.getLast()) { // touches or overlaps the frozen run before it
                end = Math.max(end, r[1]);
                continue;
            }
            starts.add(r[0]);
            frozen.add(true);
            end = Math.max(end, r[1]);
        }
        if (end < capacity) {
            starts.add(end);
            frozen.add(false);
        }
        long[] s = starts.stream().mapToLong(Long::longValue).toArray();
        boolean[] f = new boolean[s.length];
        for (int i = 0; i < f.length; i++) f[i] = frozen.get(i);
        return new FrozenLayout(s, f, capacity);
    }

    int runs() { return starts.length; }

    boolean frozen(int run) { return frozen[run]; }

    long start(int run) { return starts[run]; }

    long length(int run) { return (run + 1 < starts.length ? starts[run + 1] : capacity) - starts[run]; }

    /** Elements the float32 block holds. */
    long float32Elements() { return total(false); }

    /** Elements the bfloat16 block holds. */
    long bf16Elements() { return total(true); }

    /** Bytes of the bfloat16 block. */
    long bf16Bytes() { return bf16Elements() * BF16_BYTES; }

    /** Lays the runs out, in order, from the two blocks' addresses. */
    void place(long float32Base, long bf16Base) {
        long f = float32Base, b = bf16Base;
        for (int i = 0; i < starts.length; i++) {
            if (frozen[i]) {
                addresses[i] = b;
                b += length(i) * BF16_BYTES;
            } else {
                addresses[i] = f;
                f += length(i) * Float.BYTES;
            }
        }
    }

    /** Device address of element {@code offset} as float32, when [offset, offset + elements) is float32; else -1. */
    long float32Address(long offset, long elements) {
        return address(offset, elements, false, Float.BYTES);
    }

    /** Device address of element {@code offset} as bfloat16, when [offset, offset + elements) is frozen; else -1. */
    long bf16Address(long offset, long elements) {
        return address(offset, elements, true, BF16_BYTES);
    }

    private long address(long offset, long elements, boolean wantFrozen, int bytes) {
        int run = Arrays.binarySearch(starts, offset);
        if (run < 0) run = -run - 2;                     // the run that starts before offset
        if (run < 0 || frozen[run] != wantFrozen || offset + elements > starts[run] + length(run)) return -1;
        return addresses[run] + (offset - starts[run]) * bytes;
    }

    private long total(boolean wantFrozen) {
        long n = 0;
        for (int i = 0; i < starts.length; i++) if (frozen[i] == wantFrozen) n += length(i);
        return n;
    }
}
