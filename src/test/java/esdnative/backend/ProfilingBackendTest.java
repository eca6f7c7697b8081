package esdnative.backend;

import esdnative.backend.cpu.CpuBackend;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProfilingBackendTest {

    /** A small chain of forward and backward ops; returns every tensor it wrote, as host arrays. */
    private static List<float[]> run(Backend be) {
        Rng rng = new Rng(7);
        // gemm [3,5]·[5,4] + bias
        Tensor a = be.fromHost(rng.normal(15), 3, 5), b = be.fromHost(rng.normal(20), 5, 4);
        Tensor c = be.zeros(3, 4), bias = be.fromHost(rng.normal(4), 4);
        be.gemm(false, false, 3, 4, 5, 1f, a, 5, 0, b, 4, 0, 0f, c, 4, 0, 1);
        be.addRowBias(c, bias, 3, 4);
        // conv 2→3 channels, 3×3, on [1, 2, 5, 5], its backward
        Conv2dShape sh = new Conv2dShape(1, 2, 5, 5, 3, 3, 3, 1, 1);
        Tensor x = be.fromHost(rng.normal(50), 1, 2, 5, 5), w = be.fromHost(rng.normal(54), 3, 2, 3, 3);
        Tensor y = be.zeros(1, 3, 5, 5);
        be.conv2d(y, x, w, bias.view(0, 3), sh);
        Tensor dx = be.zeros(1, 2, 5, 5), dw = be.zeros(3, 2, 3, 3), db = be.zeros(3);
        be.conv2dBackwardData(dx, y, w, sh);
        be.conv2dBackwardWeight(dw, db, y, x, sh);
        // group norm and SiLU over y, attention over [1, 4 tokens, 2 heads × 3]
        Tensor gn = be.zeros(1, 3, 5, 5), mean = be.zeros(3), rstd = be.zeros(3);
        be.groupNorm(gn, mean, rstd, y, be.fromHost(rng.normal(3), 3), be.fromHost(rng.normal(3), 3), 1, 3, 25, 3, 1e-5f);
        Tensor act = be.zeros(1, 3, 5, 5);
        be.silu(act, gn, 75);
        Tensor q = be.fromHost(rng.normal(24), 1, 4, 6), k = be.fromHost(rng.normal(24), 1, 4, 6);
        Tensor v = be.fromHost(rng.normal(24), 1, 4, 6);
        Tensor att = be.zeros(1, 4, 6), probs = be.zeros(1, 2, 4, 4);
        be.attention(att, probs, q, k, v, 1, 2, 4, 4, 3, 0.5f, true);
        Tensor dq = be.zeros(1, 4, 6), dk = be.zeros(1, 4, 6), dv = be.zeros(1, 4, 6);
        be.attentionBackward(dq, dk, dv, att, q, k, v, probs, 1, 2, 4, 4, 3, 0.5f);
        Tensor sum = be.zeros(1, 4, 6);
        be.add(sum, dq, dk, 24);
        float loss = be.mseLoss(sum, dv, 24);
        return List.of(be.toHost(c), be.toHost(y), be.toHost(dx), be.toHost(dw), be.toHost(db), be.toHost(gn),
                be.toHost(mean), be.toHost(rstd), be.toHost(act), be.toHost(att), be.toHost(probs), be.toHost(dq),
                be.toHost(dk), be.toHost(dv), be.toHost(sum), new float[] {loss});
    }

    @Test
    void givesTheWrappedBackendsResultsBitForBit() {
        List<float[]> direct = run(new CpuBackend());
        List<float[]> profiled = run(new ProfilingBackend(new CpuBackend()));
        assertEquals(direct.size(), profiled.size());
        for (int i = 0; i < direct.size(); i++) assertArrayEquals(direct.get(i), profiled.get(i), "result " + i);
    }

    @Test
    void countsCallsAndFlopsPerOp() {
        ProfilingBackend be = new ProfilingBackend(new CpuBackend());
        run(be);
        Map<String, ProfilingBackend.OpStats> byOp = be.stats().stream()
                .collect(Collectors.toMap(ProfilingBackend.OpStats::op, Function.identity()));
        assertEquals(1, byOp.get("gemm").calls());
        assertEquals(2.0 * 3 * 4 * 5, byOp.get("gemm").flops());
        assertEquals(new Conv2dShape(1, 2, 5, 5, 3, 3, 3, 1, 1).flops(), byOp.get("conv2d[3x3]").flops());
        assertEquals(1, byOp.get("conv2dBackwardWeight[3x3]").calls());
        assertEquals(4.0 * 2 * 4 * 4 * 3, byOp.get("attention").flops());
        assertEquals(15, byOp.get("toHost").calls());
        assertTrue(byOp.get("silu").flops() == 0 && Double.isNaN(byOp.get("silu").gflops()));
        long sum = be.stats().stream().mapToLong(ProfilingBackend.OpStats::nanos).sum();
        assertEquals(sum, be.totalNanos());

        be.reset();
        assertTrue(be.stats().isEmpty());
    }
}
