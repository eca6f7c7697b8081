package esdnative.bench;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Conv2dShape;
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
 * CpuBackend convolution throughput: GFLOP/s in the "·gflop" line, per busy core "·gflopDone" / "·cpuSeconds"
 * (see {@link CpuGflops}); a call is 2·N·K·OH·OW·C·R·S flops.
 * Shapes "C:H:W:K:R" (batch 1, stride 1, same padding) are SD 1.x UNet convolutions at 512 px.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class Conv2dBenchmark {
    @Param({
            "4:64:64:320:3",     // conv_in
            "320:64:64:320:3",   // resnet conv, block 1
            "640:32:32:640:3",   // resnet conv, block 2
            "1280:16:16:1280:3", // resnet conv, block 3
            "640:32:32:1280:1",  // 1×1 skip connection
    })
    public String shape;

    private final CpuBackend cpu = new CpuBackend();
    private Conv2dShape sh;
    private Tensor x, w, bias, y, dx, dw, dBias;
    private double gflop;

    @Setup
    public void setup() {
        String[] f = shape.split(":");
        int c = Integer.parseInt(f[0]), h = Integer.parseInt(f[1]), wd = Integer.parseInt(f[2]);
        int k = Integer.parseInt(f[3]), r = Integer.parseInt(f[4]);
        sh = new Conv2dShape(1, c, h, wd, k, r, r, 1, r / 2);
        SplittableRandom rng = new SplittableRandom(1);
        x = RandomTensors.uniform(cpu, rng, 1, c, h, wd);
        w = RandomTensors.uniform(cpu, rng, k, c, r, r);
        bias = RandomTensors.uniform(cpu, rng, k);
        y = cpu.zeros(1, k, sh.outH(), sh.outW());
        dx = cpu.zeros(1, c, h, wd);
        dw = cpu.zeros(k, c, r, r);
        dBias = cpu.zeros(k);
        gflop = sh.flops() / 1e9;
    }

    @Benchmark
    public Tensor forward(Gflops counter, CpuGflops perCpu) {
        cpu.conv2d(y, x, w, bias, sh);
        counter.gflop += gflop;
        perCpu.add(gflop);
        return y;
    }

    @Benchmark
    public Tensor backwardData(Gflops counter, CpuGflops perCpu) {
        cpu.conv2dBackwardData(dx, y, w, sh);
        counter.gflop += gflop;
        perCpu.add(gflop);
        return dx;
    }

    @Benchmark
    public Tensor backwardWeight(Gflops counter, CpuGflops perCpu) {
        cpu.conv2dBackwardWeight(dw, dBias, y, x, sh);
        counter.gflop += gflop;
        perCpu.add(gflop);
        return dw;
    }
}
