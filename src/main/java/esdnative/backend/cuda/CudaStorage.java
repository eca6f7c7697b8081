package esdnative.backend.cuda;

import esdnative.tensor.Storage;

import java.lang.ref.Cleaner;

/**
 * Device memory that tensors of the CUDA backend view: one block of the backend's caching allocator, handed back
 * to it when the storage becomes unreachable, or earlier by {@link #release} (a closing scope).
 */
public final class CudaStorage implements Storage {
    private final CudaAllocator allocator;
    private final CudaAllocator.Block block;
    private final long capacity;
    private final Cleaner.Cleanable handBack;
    /** made by zeros() and not yet cleared: the memset is queued when first needed, or dropped when overwritten */
    private boolean zeroPending;
    /** given back (a closed scope, {@link CudaBackend#release}): its block may hold another tensor by now */
    private boolean released;
    /** set once weights in it were frozen into bfloat16: its elements then live in the layout's blocks */
    private FrozenLayout frozen;

    CudaStorage(CudaAllocator allocator, CudaAllocator.Block block, long capacity, Cleaner cleaner) {
        this.allocator = allocator;
        this.block = block;
        this.capacity = capacity;
        // the action must not reach this storage, or it would never become unreachable
        this.handBack = cleaner.register(this, () -> allocator.releaseLater(block));
    }

    CudaAllocator.Block block() { return block; }

    /** Hands the block back to the allocator now (once: the cleaner then has nothing left to do). */
    void release() {
        released = true;
        handBack.clean();
    }

    @Override
    public long capacity() { return capacity; }

    boolean zeroPending() { return zeroPending; }

    void zeroPending(boolean pending) { zeroPending = pending; }

    /** Device address of element {@code elementOffset}; a frozen storage's elements are found through its layout. */
    long address(long elementOffset) {
        if (allocator.isClosed()) throw new IllegalStateException("tensor used after its CUDA backend was closed");
        if (frozen != null) throw new IllegalStateException("a frozen storage's elements are addressed by its layout");
        if (released) throw new IllegalStateException("tensor used after its memory was given back (a closed scope, or released)");
        return block.address() + elementOffset * Float.BYTES;
    }

    /** The layout of its frozen weights, or null. */
    FrozenLayout frozen() {
        if (allocator.isClosed()) throw new IllegalStateException("tensor used after its CUDA backend was closed");
        return frozen;
    }

    /** Moves to {@code layout}, whose blocks hold every element now: this storage's own block goes back. */
    void freeze(FrozenLayout layout) {
        frozen = layout;
        release();
    }
}
