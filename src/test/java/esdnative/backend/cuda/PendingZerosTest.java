package esdnative.backend.cuda;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * zeros() on the CUDA backend queues no memset until the tensor is read or written in part, and an op that
 * overwrites it whole drops the memset: each case here must still see zeros where the CPU backend does. The
 * emulated device fills fresh allocations with NaNs, so a memset wrongly dropped shows.
 */
class PendingZerosTest {
    private static CudaBackend cuda;
    private static CpuBackend cpu;

    @BeforeAll
    static void open() {
        cuda = (CudaBackend) EmulatedCuda.create();
        cpu = new CpuBackend();
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
        if (cpu != null) cpu.close();
    }

    @Test
    void readBeforeAnyWriteIsZero() {
        assertArrayEquals(new float[7], cuda.toHost(cuda.zeros(7)));
    }

    @Test
    void anInPlaceOpReadsTheZerosItOverwrites() {
        Tensor x = cuda.zeros(5), one = cuda.fromHost(new float[] {1, 2, 3, 4, 5}, 5);
        cuda.add(x, x, one, 5); // out is also an input
        assertArrayEquals(new float[] {1, 2, 3, 4, 5}, cuda.toHost(x));
    }

    @Test
    void aPartWrittenTensorKeepsZerosElsewhere() {
        Tensor t = cuda.zeros(6);
        cuda.fill(t.view(3, 3), 2f);
        assertArrayEquals(new float[] {0, 0, 0, 2, 2, 2}, cuda.toHost(t));
        Tensor u = cuda.zeros(6);
        cuda.fill(u.view(0, 3), 2f); // from offset 0, but not all of it
        assertArrayEquals(new float[] {2, 2, 2, 0, 0, 0}, cuda.toHost(u));
    }

    @Test
    void anAccumulatingGemmIntoFreshZerosEqualsTheProduct() {
        float[] a = {1, 2, 3, 4, 5, 6}, b = {1, -1, 2, 0.5f, 3, 1};
        float[] expected = cpu.toHost(product(cpu, a, b));
        assertArrayEquals(expected, cuda.toHost(product(cuda, a, b)));
    }

    @Test
    void anAccumulatingGemmIntoAStridedPartKeepsTheZerosBetween() {
        // C [2, 4] with ldc 4, the product [2, 2] written into its first two columns (beta 1): columns 2, 3 stay 0
        float[] a = {1, 2, 3, 4, 5, 6}, b = {1, -1, 2, 0.5f, 3, 1};
        Tensor c = cuda.zeros(2, 4);
        cuda.gemm(false, false, 2, 2, 3, 1f, cuda.fromHost(a, 2, 3), 3, 0, cuda.fromHost(b, 3, 2), 2, 0, 1f, c, 4, 0, 1);
        float[] p = cpu.toHost(product(cpu, a, b));
        assertArrayEquals(new float[] {p[0], p[1], 0, 0, p[2], p[3], 0, 0}, cuda.toHost(c));
    }

    /** C [2, 2] = zeros, then C += A [2, 3] · B [3, 2]. */
    private static Tensor product(esdnative.backend.Backend be, float[] a, float[] b) {
        Tensor c = be.zeros(2, 2);
        be.gemm(false, false, 2, 2, 3, 1f, be.fromHost(a, 2, 3), 3, 0, be.fromHost(b, 3, 2), 2, 0, 1f, c, 2, 0, 1);
        return c;
    }
}
