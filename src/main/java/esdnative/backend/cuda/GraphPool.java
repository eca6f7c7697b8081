package esdnative.backend.cuda;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The device memory of one CUDA graph, as PyTorch's graph pools hold it: every block its captured work allocated.
 * While the graph is captured, a block whose tensor dies is handed out again within the capture (the recording keeps
 * the stream's order, so the reuse is safe); once the capture is {@link #seal sealed}, every block stays the graph's
 * at its address, whatever happens to its tensors, until the graph is destroyed and the allocator frees the pool.
 */
final class GraphPool {
    private final List<CudaAllocator.Block> blocks = new ArrayList<>();
    private final TreeMap<Long, ArrayDeque<CudaAllocator.Block>> free = new TreeMap<>();
    private boolean sealed;

    /** A free block of exactly {@code size} bytes (sizes are the allocator's rounded ones), or null. */
    CudaAllocator.Block take(long size) {
        ArrayDeque<CudaAllocator.Block> sized = free.get(size);
        return sized == null || sized.isEmpty() ? null : sized.pop();
    }

    /** A block the allocator has just made for this pool. */
    void adopt(CudaAllocator.Block block) {
        blocks.add(block);
    }

    /** A block whose tensor died: reused while capturing, kept for the graph after. */
    void giveBack(CudaAllocator.Block block) {
        if (!sealed) free.computeIfAbsent(block.bytes(), k -> new ArrayDeque<>()).push(block);
    }

    /** The capture has ended: the blocks belong to the graph from now on. */
    void seal() {
        sealed = true;
        free.clear();
    }

    List<CudaAllocator.Block> blocks() { return blocks; }

    long bytes() {
        long sum = 0;
        for (CudaAllocator.Block b : blocks) sum += b.bytes();
        return sum;
    }
}
