package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The allocator's side of CUDA graphs: while a graph is captured every block comes from its pool (reused there as
 * tensors die: the recording keeps stream order), and once the capture ends the pool's blocks are never handed to
 * other work, whatever is released, until the pool is freed. A block given away would be overwritten by the next
 * replay under the feet of its new tensor.
 */
class GraphPoolTest {
    /** A device that only hands out and takes back addresses. */
    private static final class AddressDevice implements Device {
        long next = 0x1000;
        final List<Long> freed = new ArrayList<>();

        @Override public void operation(String op) {}
        @Override public void bind() {}
        @Override public long allocate(long bytes) { long a = next; next += bytes + 4096; return a; }
        @Override public void free(long address) { freed.add(address); }
        @Override public void fill32(long address, int bits, long count) {}
        @Override public void upload(long dst, float[] src, int srcOffset, int count) {}
        @Override public void download(float[] dst, long src, int count) {}
        @Override public void copy(long dst, long src, long bytes) {}
        @Override public void launch(Kernel kernel, Dim grid, Dim block, Object... args) {}
        @Override public void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32) {}
        @Override public void gemmBf16(ColumnMajorGemm g, long a, long b, long c) {}
        @Override public void synchronize() {}
        @Override public long[] memoryInfo() { return new long[] {1L << 30, 1L << 30}; }
        @Override public String describe() { return "addresses"; }
        @Override public void close() {}
    }

    @Test
    void aSealedPoolKeepsItsBlocksFromOtherWork() {
        AddressDevice device = new AddressDevice();
        CudaAllocator allocator = new CudaAllocator(device);
        GraphPool pool = new GraphPool();
        allocator.capturing(pool);
        CudaAllocator.Block first = allocator.allocateTensor(4096, "test");
        allocator.release(first);
        CudaAllocator.Block second = allocator.allocateTensor(4096, "test");
        assertSame(first, second, "within the capture a dead tensor's block is reused");
        CudaAllocator.Block workspace = allocator.allocateWorkspace(4096, "test");
        assertNotEquals(second.address(), workspace.address());
        allocator.release(workspace);
        allocator.capturing(null);
        pool.seal();
        assertEquals(2, pool.blocks().size());

        allocator.release(second);   // the graph's tensors die in Java: their blocks stay the graph's
        CudaAllocator.Block other = allocator.allocateTensor(4096, "test");
        for (CudaAllocator.Block b : pool.blocks()) assertNotEquals(b.address(), other.address());
        allocator.release(other);
        assertSame(other, allocator.allocateTensor(4096, "test"), "the shared cache works as before");

        allocator.freePool(pool);
        assertTrue(device.freed.contains(first.address()) && device.freed.contains(workspace.address()), device.freed.toString());
        assertFalse(device.freed.contains(other.address()));
    }
}
