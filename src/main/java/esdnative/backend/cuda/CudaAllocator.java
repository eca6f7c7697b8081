package esdnative.backend.cuda;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A caching device-memory allocator: freed blocks are kept by size and handed out again, so a training step that
 * repeats the same shapes calls cuMemAlloc only during its first step. Sizes round up to 512 bytes, and blocks of
 * 1 MiB or more to whole MiB, so that near sizes share blocks.
 *
 * <p>Reuse is safe without events because all work goes to one stream: a kernel that writes a reused block runs
 * after every kernel queued while the block was in its previous use.
 *
 * <p>Blocks of tensors come back through {@link #releaseLater} from the garbage collector's cleaner thread; the
 * allocator collects them on its next call. When the device is full it asks the garbage collector for unreachable
 * tensors, then frees its cache, before reporting out-of-memory with the sizes involved.
 */
final class CudaAllocator implements AutoCloseable {
    private static final long SMALL_ROUND = 512;
    private static final long LARGE_ROUND = 1L << 20;

    /** One device allocation. */
    static final class Block {
        private final long address;
        final long bytes;

        Block(long address, long bytes) {
            this.address = address;
            this.bytes = bytes;
        }

        long address() { return address; }
    }

    private final Device device;
    private final TreeMap<Long, ArrayDeque<Block>> cached = new TreeMap<>();
    private final Set<Block> inUse = Collections.newSetFromMap(new IdentityHashMap<>());
    private final ConcurrentLinkedQueue<Block> returned = new ConcurrentLinkedQueue<>();
    private long inUseBytes;
    private long cachedBytes;
    private long peakBytes;
    private long deviceAllocations;
    private volatile boolean closed;

    CudaAllocator(Device device) {
        this.device = device;
    }

    static long roundUp(long bytes) {
        long unit = bytes >= LARGE_ROUND ? LARGE_ROUND : SMALL_ROUND;
        return Math.max(unit, (bytes + unit - 1) / unit * unit);
    }

    /**
     * A block of at least {@code bytes} for a new tensor; {@code op} names the backend operation for errors.
     * Blocks the cleaner handed back are reused from here on.
     */
    synchronized Block allocateTensor(long bytes, String op) {
        return allocate(bytes, op, true);
    }

    /**
     * A block for an operation's workspace, released by the operation itself. It never takes a block the cleaner
     * handed back during the operation: that could be one of the operation's own arguments, unreachable in Java
     * but still to be read by the kernels being queued.
     */
    synchronized Block allocateWorkspace(long bytes, String op) {
        return allocate(bytes, op, false);
    }

    private Block allocate(long bytes, String op, boolean collect) {
        ensureOpen();
        if (collect) collectReturned();
        long size = roundUp(bytes);
        Block block = takeCached(size);
        if (block == null) block = allocateOnDevice(size, bytes, op, collect);
        inUse.add(block);
        inUseBytes += block.bytes;
        peakBytes = Math.max(peakBytes, inUseBytes);
        return block;
    }

    /** Gives a block back for reuse (the caller's thread; e.g. an operation's workspace). */
    synchronized void release(Block block) {
        if (closed || !inUse.remove(block)) return;
        inUseBytes -= block.bytes;
        cached.computeIfAbsent(block.bytes, k -> new ArrayDeque<>()).push(block);
        cachedBytes += block.bytes;
    }

    /** Gives a block back from any thread (the cleaner's); it is reused from the next allocation on. */
    void releaseLater(Block block) {
        if (!closed) returned.add(block);
    }

    /** Returns every cached block, and those handed back since the last allocation, to the driver. */
    synchronized void freeUnused() {
        collectReturned();
        freeCached();
    }

    /** Returns every cached block to the driver. */
    synchronized void freeCached() {
        if (cached.isEmpty()) return;
        device.synchronize(); // no queued kernel may still use a block being freed
        for (ArrayDeque<Block> blocks : cached.values()) {
            for (Block b : blocks) device.free(b.address);
        }
        cached.clear();
        cachedBytes = 0;
    }

    /** E.g. "in use 1.2 GiB (peak 3.4 GiB), cached 0.5 GiB, 17 cuMemAlloc calls". */
    synchronized String describe() {
        return String.format(Locale.ROOT, "in use %s (peak %s), cached %s, %d cuMemAlloc calls", mib(inUseBytes), mib(peakBytes),
                mib(cachedBytes), deviceAllocations);
    }

    synchronized long deviceAllocations() { return deviceAllocations; }

    @Override
    public synchronized void close() {
        if (closed) return;
        collectReturned();
        freeCached();
        for (Block b : inUse) device.free(b.address); // tensors still alive lose their memory now
        inUse.clear();
        inUseBytes = 0;
        closed = true;
    }

    boolean isClosed() { return closed; }

    private Block takeCached(long size) {
        ArrayDeque<Block> blocks = cached.get(size);
        if (blocks == null || blocks.isEmpty()) return null;
        Block b = blocks.pop();
        cachedBytes -= b.bytes;
        return b;
    }

    private Block allocateOnDevice(long size, long requested, String op, boolean collect) {
        long address = device.allocate(size);
        for (int attempt = 0; attempt < 3 && address == 0; attempt++) {
            if (collect) {
                // unreachable tensors may still hold blocks: let the cleaner hand them back, then try the cache
                System.gc();
                sleepBriefly();
                collectReturned();
                Block reused = takeCached(size);
                if (reused != null) return reused;
            }
            freeCached();
            address = device.allocate(size);
        }
        if (address == 0) {
            long[] info = device.memoryInfo();
            throw new CudaException(String.format(Locale.ROOT, "cuda %s: out of GPU memory allocating %s (%d bytes): %s;"
                            + " the device has %s free of %s", op, mib(size), requested, describe(),
                    mib(info[0]), mib(info[1])));
        }
        deviceAllocations++;
        return new Block(address, size);
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
