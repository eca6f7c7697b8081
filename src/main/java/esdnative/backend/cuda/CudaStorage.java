package esdnative.backend.cuda;

import esdnative.tensor.Storage;

/**
 * Device memory that tensors of the CUDA backend view: one block of the backend's caching allocator, handed back
 * to it when the storage becomes unreachable.
 */
public final class CudaStorage implements Storage {
    private final CudaAllocator allocator;
    private final CudaAllocator.Block block;
    private final long capacity;

    CudaStorage(CudaAllocator allocator, CudaAllocator.Block block, long capacity) {
        this.allocator = allocator;
        this.block = block;
        this.capacity = capacity;
    }

    @Override
    public long capacity() { return capacity; }

    /** Device address of element {@code elementOffset}. */
    long address(long elementOffset) {
        if (allocator.isClosed()) throw new IllegalStateException("tensor used after its CUDA backend was closed");
        return block.address() + elementOffset * Float.BYTES;
    }
}
