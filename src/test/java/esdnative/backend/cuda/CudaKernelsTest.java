package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Ptr;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kernel arguments are checked against the kernel's parameter list before any launch (no GPU needed). */
class CudaKernelsTest {

    /** Writes the arguments into a fresh parameter block, as a launch does. */
    private static void pack(Kernel kernel, Object... args) {
        try (Arena arena = Arena.ofConfined()) {
            new ParameterBlock(kernel, arena).write(args);
        }
    }

    @Test
    void theParameterBlockPointsAtEachArgumentsValue() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = new ParameterBlock(Kernel.AXPY, arena)
                    .write(new Ptr(0x1000), 0.5f, new Ptr(0x2000), 12L).pointers();
            assertEquals(0x1000, params.getAtIndex(ADDRESS, 0).reinterpret(8).get(JAVA_LONG, 0));
            assertEquals(0.5f, params.getAtIndex(ADDRESS, 1).reinterpret(4).get(JAVA_FLOAT, 0));
            assertEquals(0x2000, params.getAtIndex(ADDRESS, 2).reinterpret(8).get(JAVA_LONG, 0));
            assertEquals(12L, params.getAtIndex(ADDRESS, 3).reinterpret(8).get(JAVA_LONG, 0));
        }
    }

    @Test
    void argumentsOfTheRightTypesPack() {
        assertDoesNotThrow(() -> pack(Kernel.AXPY, new Ptr(0x1000), 0.5f, new Ptr(0x2000), 12L));
        assertDoesNotThrow(() -> pack(Kernel.SPLIT_CHANNELS, null, new Ptr(1), new Ptr(2), 1, 2, 3, 4));
    }

    @Test
    void anIntWhereTheKernelTakesA64BitCountIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> pack(Kernel.AXPY, new Ptr(0x1000), 0.5f, new Ptr(0x2000), 12));
        assertTrue(e.getMessage().contains("axpy argument 3 must be I64"), e.getMessage());
    }

    @Test
    void wrongCountsAndTypesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> pack(Kernel.AXPY, new Ptr(1), 0.5f, new Ptr(2)));
        assertThrows(IllegalArgumentException.class, () -> pack(Kernel.AXPY, new Ptr(1), 0.5, new Ptr(2), 1L));
        assertThrows(IllegalArgumentException.class, () -> pack(Kernel.AXPY, 5L, 0.5f, new Ptr(2), 1L));
    }

    @Test
    void allocatorSizesRoundUp() {
        assertEquals(512, CudaAllocator.roundUp(1));
        assertEquals(512, CudaAllocator.roundUp(512));
        assertEquals(1024, CudaAllocator.roundUp(513));
        assertEquals(1L << 20, CudaAllocator.roundUp((1L << 20) - 1));
        assertEquals((1L << 20) + 512, CudaAllocator.roundUp((1L << 20) + 1));
    }
}
