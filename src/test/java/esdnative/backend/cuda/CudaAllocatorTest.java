package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The caching allocator's block reuse (best fit, split, merge) and its account of the memory held, on a counting device. */
class CudaAllocatorTest {
    private static final long MIB = 1L << 20;

    @Test
    void memoryFreedByOneSizeServesOthers() {
        CountingDevice device = new CountingDevice();
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            CudaAllocator.Block big = allocator.allocateTensor(10 * MIB, "test");
            allocator.release(big);
            // two smaller blocks come out of the freed one: no new device memory
            CudaAllocator.Block a = allocator.allocateTensor(4 * MIB, "test");
            CudaAllocator.Block b = allocator.allocateTensor(5 * MIB, "test");
            assertEquals(1, device.allocateCalls);
            assertEquals(big.address(), a.address());
            assertEquals(big.address() + 4 * MIB, b.address());
            // freed neighbours merge again: the whole block serves a request of its size
            allocator.release(b);
            allocator.release(a);
            CudaAllocator.Block again = allocator.allocateTensor(10 * MIB, "test");
            assertEquals(big.address(), again.address());
            assertEquals(1, device.allocateCalls);
            assertEquals(10 * MIB, device.peak);
        }
        assertTrue(device.allocations.isEmpty(), "close returns every segment");
    }

    @Test
    void bestFitTakesTheSmallestFreeBlockThatHolds() {
        CountingDevice device = new CountingDevice();
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            CudaAllocator.Block large = allocator.allocateTensor(8 * MIB, "test");
            CudaAllocator.Block medium = allocator.allocateTensor(3 * MIB, "test");
            allocator.release(large);
            allocator.release(medium);
            assertEquals(medium.address(), allocator.allocateTensor(2 * MIB, "test").address());
            assertEquals(large.address(), allocator.allocateTensor(5 * MIB, "test").address());
            assertEquals(2, device.allocateCalls);
        }
    }

    @Test
    void smallRequestsDoNotCutUpLargeBlocks() {
        CountingDevice device = new CountingDevice();
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            CudaAllocator.Block large = allocator.allocateTensor(4 * MIB, "test");
            allocator.release(large);
            CudaAllocator.Block small = allocator.allocateTensor(1000, "test");
            assertNotEquals(large.address(), small.address());
            CudaAllocator.Block smallToo = allocator.allocateTensor(1000, "test");
            assertEquals(small.address() + 1024, smallToo.address(), "small requests share a small segment");
            assertEquals(large.address(), allocator.allocateTensor(4 * MIB, "test").address());
        }
    }

    @Test
    void aNearlyFullDeviceStillServesASmallRequest() {
        CountingDevice device = new CountingDevice();
        device.capacity = MIB; // less than a small segment
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            allocator.allocateTensor(1000, "test");
            assertEquals(1024, device.held);
        }
    }

    @Test
    void freeingTheCacheReturnsOnlyWhollyFreeSegments() {
        CountingDevice device = new CountingDevice();
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            CudaAllocator.Block kept = allocator.allocateTensor(2 * MIB, "test");
            allocator.release(allocator.allocateTensor(3 * MIB, "test"));
            assertEquals(5 * MIB, device.held);
            allocator.freeCached();
            assertEquals(2 * MIB, device.held);
            assertEquals(kept.address(), device.allocations.keySet().iterator().next());
        }
    }

    @Test
    void thePeaksAreToldByUse() {
        CountingDevice device = new CountingDevice();
        try (CudaAllocator allocator = new CudaAllocator(device)) {
            CudaAllocator.Block weights = allocator.allocateTensor(6 * MIB, "test");
            allocator.relabel(weights, "weights");
            allocator.label("activations");
            CudaAllocator.Block activation = allocator.allocateTensor(2 * MIB, "test");
            allocator.release(activation);
            MemoryLedger.Snapshot peak = allocator.atHeldPeak();
            assertEquals(6 * MIB, peak.inUse().get("weights"));
            assertEquals(2 * MIB, peak.inUse().get("activations"));
            assertEquals(0, peak.free());
            assertEquals(device.peak, peak.inUseBytes() + peak.free());
        }
    }
}
