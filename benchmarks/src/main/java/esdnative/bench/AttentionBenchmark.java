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
 * CpuBackend multi-head attention, forward (probabilities not kept, as inference runs it) and backward (from kept
 * probabilities): GFLOP/s in the "·gflop" line, counting the two products, 4·b·heads·lq·lk·d flops per call
 * (the softmax's exponentials are extra work not counted). Shapes "heads:lq:lk:d", batch 1.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class AttentionBenchmark {
    @Param({
            "8:4096:4096:40", // SD 1.x self-attention at 512 px, first level
            "8:4096:77:40",   // its cross-attention on the text
            "8:1024:1024:80", // self-attention, second level
            "8:256:256:4",    // tiny-sd-a self-attention (narrow heads)
            "8:256:77:4",     // tiny-sd-a cross-attention
    })
    public String shape;

    private final CpuBackend cpu = new CpuBackend();
    private int heads, lq, lk, d;
    private Tensor q, k, v, out, probs, dOut, dq, dk, dv;
    private double gflop;

    @Setup
    public void setup() {
        String[] f = shape.split(":");
        heads = Integer.parseInt(f[0]);
        lq = Integer.parseInt(f[1]);
        lk = Integer.parseInt(f[2]);
        d = Integer.parseInt(f[3]);
        SplittableRandom rng = new SplittableRandom(1);
        q = RandomTensors.uniform(cpu, rng, lq, heads * d);
        k = RandomTensors.uniform(cpu, rng, lk, heads * d);
        v = RandomTensors.uniform(cpu, rng, lk, heads * d);
        dOut = RandomTensors.uniform(cpu, rng, lq, heads * d);
        out = cpu.zeros(lq, heads * d);
        dq = cpu.zeros(lq, heads * d);
        dk = cpu.zeros(lk, heads * d);
        dv = cpu.zeros(lk, heads * d);
        probs = cpu.zeros(heads, lq, lk);
        cpu.attention(out, probs, q, k, v, 1, heads, lq, lk, d, scale(), false);
        gflop = 4.0 * heads * lq * lk * d / 1e9;
    }

    private float scale() { return (float) (1 / Math.sqrt(d)); }

    @Benchmark
    public Tensor forward(Gflops counter, CpuGflops perCpu) {
        cpu.attention(out, null, q, k, v, 1, heads, lq, lk, d, scale(), false);
        counter.gflop += gflop;
        perCpu.add(gflop);
        return out;
    }

    @Benchmark
    public Tensor backward(Gflops counter, CpuGflops perCpu) {
        cpu.attentionBackward(dq, dk, dv, dOut, q, k, v, probs, 1, heads, lq, lk, d, scale());
        counter.gflop += 2 * gflop; // dP and dV, then dQ and dK: four products
        perCpu.add(2 * gflop);
        return dq;
    }
}
