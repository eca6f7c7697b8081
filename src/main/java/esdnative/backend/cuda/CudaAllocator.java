package esdnative.backend.cuda;

import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A caching device-memory allocator that cuts blocks out of its device allocations (segments), as PyTorch's does:
 * a request takes the smallest free block that holds it (best fit), split when enough is left over, and a freed
 * block merges with its free neighbours; only when no free block holds a request does it get a segment of its own
 * size. So memory freed by one size serves any other, and a training step that repeats the same shapes calls
 * cuMemAlloc only during its first step. Requests under 1 MiB share 2 MiB segments of their own, so that small
 * long-lived tensors do not cut up the large blocks. Sizes round up to 512 bytes.
 *
 * <p>Reuse is safe without events because all work goes to one stream: a kernel that writes a reused block runs
 * after every kernel queued while the block was in its previous use.
 *
 * <p>Blocks of tensors come back through {@link #releaseLater} from the garbage collector's cleaner thread; the
 * allocator collects them on its next call. When the device is full it asks the garbage collector for unreachable
 * tensors, then frees its wholly free segments, before reporting out-of-memory with the sizes involved.
 */
final class CudaAllocator implements AutoCloseable {
    /** every block's size is a multiple of this (cuBLAS and vector loads want 256-byte alignment) */
    private static final long ROUND = 512;
    /** requests below this come from small segments */
    private static final long SMALL_LIMIT = 1L << 20;
    private static final long SMALL_SEGMENT = 2L << 20;
    /** a large block is split only when this much is left over (less stays with the block) */
    private static final long MIN_LARGE_REST = 1L << 20;
    /** the ledger's name for the memory of captured CUDA graphs' pools */
    private static final String GRAPH_POOL = "cuda graph pools";
    private static final Comparator<Block> BY_SIZE =
            Comparator.<Block>comparingLong(b -> b.bytes).thenComparingLong(b -> b.address);

    /**
     * A piece of a segment: in use (by one tensor or workspace; {@code label} says what for) or free. A segment's
     * blocks are linked in address order.
     */
    static final class Block {
        private final long address;
        private long bytes;
        private final boolean small;
        /** the graph whose captured work uses this block (a whole device allocation of its own), or null */
        final GraphPool pool;
        private String label;
        private boolean free = true;
        private Block prev;
        private Block next;

        private Block(long address, long bytes, boolean small) {
            this(address, bytes, small, null);
        }

        private Block(long address, long bytes, boolean small, GraphPool pool) {
            this.address = address;
            this.bytes = bytes;
            this.small = small;
            this.pool = pool;
        }

        long address() { return address; }

        long bytes() { return bytes; }

        /** the whole segment: free and without neighbours */
        private boolean wholeSegment() { return prev == null && next == null; }
    }

    private final Device device;
    private final TreeSet<Block> freeSmall = new TreeSet<>(BY_SIZE);
    private final TreeSet<Block> freeLarge = new TreeSet<>(BY_SIZE);
    private final Set<Long> segments = new HashSet<>(); // their base addresses
    private final Set<Block> inUse = Collections.newSetFromMap(new IdentityHashMap<>());
    private final ConcurrentLinkedQueue<Block> returned = new ConcurrentLinkedQueue<>();
    private final MemoryLedger ledger = new MemoryLedger();
    /** what new tensors are for, in the ledger */
    private String label = "other";
    private long deviceAllocations;
    private volatile boolean closed;
    /** while a graph is captured: the pool every allocation comes from */
    private GraphPool capturing;

    CudaAllocator(Device device) {
        this.device = device;
    }

    static long roundUp(long bytes) {
        return Math.max(ROUND, (bytes + ROUND - 1) / ROUND * ROUND);
    }

    /**
     * A block of at least {@code bytes} for a new tensor; {@code op} names the backend operation for errors.
     * Blocks the cleaner handed back are reused from here on.
     */
    synchronized Block allocateTensor(long bytes, String op) {
        return allocate(bytes, op, true, label);
    }

    /**
     * A block for an operation's workspace, released by the operation itself. It never takes a block the cleaner
     * handed back during the operation: that could be one of the operation's own arguments, unreachable in Java
     * but still to be read by the kernels being queued.
     */
    synchronized Block allocateWorkspace(long bytes, String op) {
        return allocate(bytes, op, false, "workspace");
    }

    private Block allocate(long bytes, String op, boolean collect, String use) {
        ensureOpen();
        if (collect) collectReturned();
        long size = roundUp(bytes);
        if (capturing != null) return allocateForGraph(size, bytes, op);
        boolean small = size < SMALL_LIMIT;
        Block block = takeFree(size, small);
        if (block == null) block = newSegment(size, small, bytes, op, collect);
        splitOff(block, size);
        block.free = false;
        block.label = use;
        inUse.add(block);
        ledger.inUse(use, block.bytes);
        ledger.notePeaks();
        return block;
    }

    /** Names what the tensors allocated from now on are for (e.g. "saved activations"), in {@link #describePeaks}. */
    synchronized void label(String use) {
        label = use;
    }

    /** Names what a block in use is for from now on (e.g. weights allocated before anyone named them). */
    synchronized void relabel(Block block, String use) {
        if (!inUse.contains(block)) return;
        ledger.inUse(block.label, -block.bytes);
        block.label = use;
        ledger.inUse(use, block.bytes);
    }

    /** Gives a block back for reuse (the caller's thread; e.g. an operation's workspace). */
    synchronized void release(Block block) {
        if (block.pool != null) {
            block.pool.giveBack(block);
            return;
        }
        if (closed || !inUse.remove(block)) return;
        ledger.inUse(block.label, -block.bytes);
        block.label = null;
        block.free = true;
        Block merged = block;
        if (merged.prev != null && merged.prev.free) merged = absorbNext(removeFree(merged.prev));
        if (merged.next != null && merged.next.free) {
            removeFree(merged.next);
            absorbNext(merged);
        }
        addFree(merged);
    }

    /** Takes in the blocks handed back since the last allocation (so that a report counts them as cached). */
    synchronized void collect() {
        if (!closed) collectReturned();
    }

    /** Gives a block back from any thread (the cleaner's); it is reused from the next allocation on. */
    void releaseLater(Block block) {
        if (!closed) returned.add(block);
    }

    /** Returns every wholly free segment, and the blocks handed back since the last allocation, to the driver. */
    synchronized void freeUnused() {
        collectReturned();
        freeCached();
    }

    /**
     * From now until {@code capturing(null)}, allocations come from {@code pool} (null: from the shared segments
     * again): the blocks a graph's captured work uses must keep their addresses, and no other work may be given
     * them, for as long as the graph may be launched.
     */
    synchronized void capturing(GraphPool pool) {
        capturing = pool;
    }

    /** Frees a pool's blocks once its graph is destroyed (after the queued work that may use them). */
    synchronized void freePool(GraphPool pool) {
        if (closed) return;
        device.synchronize();
        for (Block b : pool.blocks()) {
            device.free(b.address);
            ledger.inUse(b.label, -b.bytes);
        }
    }

    /**
     * A block of {@code pool}'s: a free one of the size, else a new device allocation of its own. Never freeing
     * memory or waiting for the device (neither can be captured), it reports out-of-memory at once.
     */
    private Block allocateForGraph(long size, long requested, String op) {
        Block block = capturing.take(size);
        if (block != null) return block;
        long address = device.allocate(size);
        if (address == 0) {
            throw new CudaException(String.format(Locale.ROOT, "cuda %s: out of GPU memory allocating %s (%d bytes) for"
                    + " a CUDA graph being captured: %s", op, mib(size), requested, describe()));
        }
        deviceAllocations++;
        block = new Block(address, size, false, capturing);
        block.free = false;
        block.label = GRAPH_POOL;
        ledger.inUse(GRAPH_POOL, size);
        ledger.notePeaks();
        capturing.adopt(block);
        return block;
    }

    /** Returns every wholly free segment to the driver. */
    synchronized void freeCached() {
        boolean any = false;
        for (TreeSet<Block> pool : List.of(freeSmall, freeLarge)) {
            for (Iterator<Block> it = pool.iterator(); it.hasNext(); ) {
                Block b = it.next();
                if (!b.wholeSegment()) continue;
                if (!any) device.synchronize(); // no queued kernel may still use a segment being freed
                any = true;
                it.remove();
                ledger.free(-b.bytes);
                segments.remove(b.address);
                device.free(b.address);
            }
        }
    }

    /** E.g. "in use 1.2 MiB (peak 3.4 MiB), cached 0.5 MiB, 17 cuMemAlloc calls". */
    synchronized String describe() {
        return String.format(Locale.ROOT, "in use %s (peak %s), cached %s, %d cuMemAlloc calls", mib(ledger.inUseBytes()),
                mib(ledger.inUsePeak()), mib(ledger.freeBytes()), deviceAllocations);
    }

    /**
     * What the memory held at its peak (in use + cached) and the memory in use at its peak were used for, by label,
     * e.g. "held at peak 12.10 GiB: unet weights 3.20 GiB, ..., free 5.00 GiB; in use at peak 7.00 GiB: ...".
     */
    synchronized String describePeaks() {
        String held = ledger.atHeldPeak().describe(), inUse = ledger.atInUsePeak().describe();
        return "held at peak " + held + (inUse.equals(held) ? " (also the most in use)" : "; in use at peak " + inUse);
    }

    /** What the memory was used for when the most was held (in use + cached). */
    synchronized MemoryLedger.Snapshot atHeldPeak() { return ledger.atHeldPeak(); }

    synchronized long deviceAllocations() { return deviceAllocations; }

    @Override
    public synchronized void close() {
        if (closed) return;
        collectReturned();
        if (!segments.isEmpty()) device.synchronize();
        for (long base : segments) device.free(base); // tensors still alive lose their memory now
        segments.clear();
        inUse.clear();
        freeSmall.clear();
        freeLarge.clear();
        closed = true;
    }

    boolean isClosed() { return closed; }

    /** The smallest free block of the pool holding {@code size}, taken out of the free set; null if none. */
    private Block takeFree(long size, boolean small) {
        TreeSet<Block> pool = small ? freeSmall : freeLarge;
        Block b = pool.ceiling(new Block(0, size, small));
        return b == null ? null : removeFree(b);
    }

    /** Cuts what {@code block} (free, in no free set) has beyond {@code size} off into a free block of its own. */
    private void splitOff(Block block, long size) {
        long rest = block.bytes - size;
        if (rest < (block.small ? ROUND : MIN_LARGE_REST)) return;
        Block tail = new Block(block.address + size, rest, block.small);
        tail.prev = block;
        tail.next = block.next;
        if (block.next != null) block.next.prev = tail;
        block.next = tail;
        block.bytes = size;
        addFree(tail);
    }

    /** Merges block's next neighbour (free, in no free set) into it; returns block. */
    private static Block absorbNext(Block block) {
        Block n = block.next;
        block.bytes += n.bytes;
        block.next = n.next;
        if (n.next != null) n.next.prev = block;
        return block;
    }

    private void addFree(Block b) {
        (b.small ? freeSmall : freeLarge).add(b);
        ledger.free(b.bytes);
    }

    private Block removeFree(Block b) {
        (b.small ? freeSmall : freeLarge).remove(b);
        ledger.free(-b.bytes);
        return b;
    }

    /** A new segment for a request of {@code size}, as one free block in no free set. */
    private Block newSegment(long size, boolean small, long requested, String op, boolean collect) {
        long bytes = small ? SMALL_SEGMENT : size;
        long address = device.allocate(bytes);
        for (int attempt = 0; attempt < 3 && address == 0; attempt++) {
            if (collect) {
                // unreachable tensors may still hold blocks: let the cleaner hand them back, then try the free ones
                System.gc();
                sleepBriefly();
                collectReturned();
                Block reused = takeFree(size, small);
                if (reused != null) return reused;
            }
            freeCached();
            address = device.allocate(bytes);
        }
        if (address == 0 && small) { // nearly full: the request alone, in a segment of its size
            bytes = size;
            address = device.allocate(bytes);
        }
        if (address == 0) {
            long[] info = device.memoryInfo();
            throw new CudaException(String.format(Locale.ROOT, "cuda %s: out of GPU memory allocating %s (%d bytes): %s;"
                            + " the device has %s free of %s", op, mib(size), requested, describe(),
                    mib(info[0]), mib(info[1])));
        }
        deviceAllocations++;
        segments.add(address);
        return new Block(address, bytes, small);
    }

    private void collectReturned() {
        for (Block b; (b = returned.poll()) != null; ) release(b);
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
    }

    private static void sleepBriefly() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
    }
}
