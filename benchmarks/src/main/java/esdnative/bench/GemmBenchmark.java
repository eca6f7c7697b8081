package esdnative.bench;

import esdnative.backend.cpu.Gemm;
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
 * Gemm.sgemm throughput: GFLOP/s in the "·gflop" line, per busy core "·gflopDone" / "·cpuSeconds" (see
 * {@link CpuGflops}). Shapes are "TT:m:n:k" with TT the transposes of A and B; besides 1024³ they are the
 * products of SD 1.x at 512 px (64×64 latent, 8 heads of 40 in the first block) as ConvOps and AttentionOps
 * issue them.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class GemmBenchmark {
    @Param({
            "NN:1024:1024:1024", "NT:1024:1024:1024", "TN:1024:1024:1024",
            "NN:320:4096:2880",  // conv 3×3 320→320 forward: weight [320, 2880] · im2col [2880, 4096]
            "TN:2880:4096:320",  // its backward-data: weightᵀ · dOut
            "NT:320:2880:4096",  // its backward-weight: dOut · im2colᵀ
            "NN:4096:320:2880",  // the same product with pixels as rows
            "NT:4096:4096:40",   // attention scores Q·Kᵀ, one head
            "NN:4096:40:4096",   // attention output P·V, one head
            "TN:4096:40:4096",   // attention backward dV = Pᵀ·dO
            "NT:4096:77:40",     // cross-attention scores against 77 text tokens
            "NT:4096:1280:320",  // feed-forward projection x·Wᵀ
            "NT:2:1280:320",     // time-embedding linear, batch of 2
    })
    public String shape;

    private boolean transA, transB;
    private int m, n, k;
    private float[] a, b, c;
    private double gflop;

    @Setup
    public void setup() {
        String[] f = shape.split(":");
        transA = f[0].charAt(0) == 'T';
        transB = f[0].charAt(1) == 'T';
        m = Integer.parseInt(f[1]);
        n = Integer.parseInt(f[2]);
        k = Integer.parseInt(f[3]);
        SplittableRandom rng = new SplittableRandom(1);
        a = random(m * k, rng);
        b = random(k * n, rng);
        c = new float[m * n];
        gflop = 2.0 * m * n * k / 1e9;
    }

    private static float[] random(int size, SplittableRandom rng) {
        float[] x = new float[size];
        for (int i = 0; i < size; i++) x[i] = (float) (rng.nextDouble() * 2 - 1);
        return x;
    }

    @Benchmark
    public float[] sgemm(Gflops counter, CpuGflops perCpu) {
        Gemm.sgemm(transA, transB, m, n, k, 1f, a, 0, transA ? m : k, b, 0, transB ? k : n, 0f, c, 0, n);
        counter.gflop += gflop;
        perCpu.add(gflop);
        return c;
    }
}
