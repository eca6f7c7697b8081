package esdnative.bench;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * CpuBackend's elementwise and normalisation ops on the UNet's tensors: average time per call (µs). Sizes
 * "rows:cols" are tokens × channels: 4096:1280 is SD 1.x's GEGLU at 512 px, first level (1280 = 4 · 320, its
 * input twice that); 256:128 is tiny-sd-a's. SiLU and GroupNorm (32 groups, or 8 when cols < 256) run on the
 * same number of elements read as [1, cols, rows].
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class ActivationBenchmark {
    @Param({"4096:1280", "256:128"})
    public String size;

    private final CpuBackend cpu = new CpuBackend();
    private int rows, cols, groups;
    private Tensor gegluIn, gegluOut, dGegluIn, x, y, dx, gamma, beta, mean, rstd;

    @Setup
    public void setup() {
        String[] f = size.split(":");
        rows = Integer.parseInt(f[0]);
        cols = Integer.parseInt(f[1]);
        groups = cols >= 256 ? 32 : 8;
        SplittableRandom rng = new SplittableRandom(1);
        gegluIn = random(rng, rows, 2 * cols);
        gegluOut = cpu.zeros(rows, cols);
        dGegluIn = cpu.zeros(rows, 2 * cols);
        x = random(rng, rows * cols);
        y = cpu.zeros(rows * cols);
        dx = cpu.zeros(rows * cols);
        gamma = random(rng, cols);
        beta = random(rng, cols);
        mean = cpu.zeros(groups);
        rstd = cpu.zeros(groups);
    }

    private Tensor random(SplittableRandom rng, int... shape) {
        float[] values = new float[(int) Tensor.sizeOf(shape)];
        for (int i = 0; i < values.length; i++) values[i] = (float) (rng.nextGaussian() * 2);
        return cpu.fromHost(values, shape);
    }

    @Benchmark
    public Tensor geglu() {
        cpu.geglu(gegluOut, gegluIn, rows, cols);
        return gegluOut;
    }

    @Benchmark
    public Tensor gegluBackward() {
        cpu.gegluBackward(dGegluIn, gegluOut, gegluIn, rows, cols);
        return dGegluIn;
    }

    @Benchmark
    public Tensor silu() {
        cpu.silu(y, x, x.size());
        return y;
    }

    @Benchmark
    public Tensor siluBackward() {
        cpu.siluBackward(dx, y, x, x.size());
        return dx;
    }

    @Benchmark
    public Tensor groupNorm() {
        cpu.groupNorm(y, mean, rstd, x, gamma, beta, 1, cols, rows, groups, 1e-5f);
        return y;
    }
}
