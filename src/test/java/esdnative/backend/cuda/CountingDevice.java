package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;

import java.util.HashMap;
import java.util.Map;

/**
 * A {@link Device} that computes nothing: it hands out addresses and counts what is held, as cuMemAlloc and cuMemFree
 * would (up to {@code capacity} bytes); launches, GEMMs and copies do nothing. For tests of what holds memory.
 */
final class CountingDevice implements Device {
    final Map<Long, Long> allocations = new HashMap<>();
    long next = 1L << 32;
    long capacity = Long.MAX_VALUE;
    long held;
    long peak;
    int allocateCalls;
    int syncs;

    @Override
    public long allocate(long bytes) {
        if (held + bytes > capacity) return 0;
        long address = next;
        next += bytes + 4096;
        allocations.put(address, bytes);
        held += bytes;
        peak = Math.max(peak, held);
        allocateCalls++;
        return address;
    }

    @Override
    public void free(long address) {
        Long bytes = allocations.remove(address);
        if (bytes == null) throw new IllegalArgumentException("not an allocation's base: " + address);
        held -= bytes;
    }

    @Override
    public void synchronize() { syncs++; }

    @Override
    public void operation(String op) {}

    @Override
    public void bind() {}

    @Override
    public void fill32(long address, int bits, long count) {}

    @Override
    public void upload(long dst, float[] src, int srcOffset, int count) {}

    @Override
    public void download(float[] dst, long src, int count) {}

    @Override
    public void copy(long dst, long src, long bytes) {}

    @Override
    public void launch(Kernel kernel, Dim grid, Dim block, Object... args) {}

    @Override
    public void gemm(ColumnMajorGemm g, long a, long b, long c, boolean tf32) {}

    @Override
    public void gemmBf16(ColumnMajorGemm g, long a, long b, long c) {}

    @Override
    public long[] memoryInfo() { return new long[] {0, 0}; }

    @Override
    public String describe() { return "counting stand-in"; }

    @Override
    public void close() {}
}
