package esdnative.backend.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * The bfloat16 operands of the GEMMs of the current operation in bf16 precision (cuBLAS multiplies bf16 A and B
 * only, into a float32 C): float32 operands, activations and trained weights alike, are rounded into workspaces (as
 * autocast casts each input of a bf16 matmul), which go back to the allocator when the next operation begins
 * ({@link #releaseAll}; one stream, in order, so the queued GEMMs read them first). Frozen weights are bfloat16
 * already and are read where they lie.
 */
final class Bf16Operands {
    /** Bytes of one bfloat16 element. */
    static final int BYTES = 2;

    /** Queues dst[i] = bf16(src[i]) (round to nearest even) for n elements at device addresses. */
    @FunctionalInterface
    interface Cast {
        void toBf16(long dst, long src, long n);
    }

    private final CudaAllocator allocator;
    private final Cast cast;
    private final List<CudaAllocator.Block> workspaces = new ArrayList<>(2);

    Bf16Operands(CudaAllocator allocator, Cast cast) {
        this.allocator = allocator;
        this.cast = cast;
    }

    /** A bfloat16 workspace of {@code elements} for operation {@code op}, held until {@link #releaseAll}. */
    private long workspace(long elements, String op) {
        CudaAllocator.Block block = allocator.allocateWorkspace(Math.max(1, elements) * BYTES, op);
        workspaces.add(block);
        return block.address();
    }

    /** The {@code elements} float32 values at {@code src} rounded into a new workspace; its address. */
    long rounded(long src, long elements, String op) {
        long dst = workspace(elements, op);
        cast.toBf16(dst, src, elements);
        return dst;
    }

    /** Hands every workspace back. */
    void releaseAll() {
        for (CudaAllocator.Block b : workspaces) allocator.release(b);
        workspaces.clear();
    }
}
