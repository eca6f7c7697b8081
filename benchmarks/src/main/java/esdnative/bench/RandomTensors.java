package esdnative.bench;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Tensor;

import java.util.SplittableRandom;

/** Seeded uniform(−1, 1) inputs for the benchmarks. */
final class RandomTensors {
    private RandomTensors() {}

    static Tensor uniform(CpuBackend cpu, SplittableRandom rng, int... shape) {
        float[] values = new float[(int) Tensor.sizeOf(shape)];
        for (int i = 0; i < values.length; i++) values[i] = (float) (rng.nextDouble() * 2 - 1);
        return cpu.fromHost(values, shape);
    }
}
