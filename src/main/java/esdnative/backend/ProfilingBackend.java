package esdnative.backend;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A {@link Backend} that forwards every call to another and times it by op name: calls, total time, and for the
 * matrix ops (gemm, conv2d*, attention*) the floating-point operations, so a report shows where a forward or
 * backward spends its time and how fast each kind of op runs.
 *
 * <p>Times are wall-clock around the delegate's call, which is right for the CPU backend (its ops return when done).
 * An asynchronous backend would need a synchronisation per op to be timed this way. Not thread-safe: call it from
 * one thread, as the models do.
 */
public final class ProfilingBackend implements Backend {

    /** One op's totals. */
    public record OpStats(String op, long calls, long nanos, double flops) {
        public double millis() { return nanos / 1e6; }

        /** GFLOP/s over all calls, or NaN for ops without a flop count. */
        public double gflops() { return flops > 0 && nanos > 0 ? flops / nanos : Double.NaN; }
    }

    private final Backend delegate;
    /** op → its totals so far: one lookup per call, no boxing */
    private final Map<String, Totals> counts = new LinkedHashMap<>();

    private static final class Totals {
        long calls;
        long nanos;
        double flops;
    }

    public ProfilingBackend(Backend delegate) {
        this.delegate = delegate;
    }

    /** The wrapped backend. */
    public Backend delegate() { return delegate; }

    /** Forgets everything recorded so far (e.g. after warm-up). */
    public void reset() {
        counts.clear();
    }

    /** Totals per op, most time first. */
    public List<OpStats> stats() {
        List<OpStats> out = new ArrayList<>();
        for (var e : counts.entrySet()) {
            out.add(new OpStats(e.getKey(), e.getValue().calls, e.getValue().nanos, e.getValue().flops));
        }
        out.sort(Comparator.comparingLong(OpStats::nanos).reversed().thenComparing(OpStats::op));
        return out;
    }

    /** Nanoseconds recorded over all ops. */
    public long totalNanos() {
        long sum = 0;
        for (Totals t : counts.values()) sum += t.nanos;
        return sum;
    }

    private void timed(String op, double flops, Runnable call) {
        long start = System.nanoTime();
        call.run();
        record(op, flops, System.nanoTime() - start);
    }

    private <T> T timed(String op, Supplier<T> call) {
        long start = System.nanoTime();
        T result = call.get();
        record(op, 0, System.nanoTime() - start);
        return result;
    }

    private void record(String op, double flops, long nanos) {
        Totals t = counts.get(op);
        if (t == null) counts.put(op, t = new Totals());
        t.calls++;
        t.nanos += nanos;
        t.flops += flops;
    }

    @Override
    public String name() { return delegate.name(); }

    // ---- memory -------------------------------------------------------------------------------------------

    @Override
    public Tensor zeros(int... shape) { return timed("zeros", () -> delegate.zeros(shape)); }

    @Override
    public Scope openScope() { return delegate.openScope(); }

    @Override
    public void labelAllocations(String label) { delegate.labelAllocations(label); }

    @Override
    public void release(Tensor t) { delegate.release(t); }

    @Override
    public Tensor fromHost(float[] data, int... shape) { return timed("fromHost", () -> delegate.fromHost(data, shape)); }

    @Override
    public float[] toHost(Tensor t) { return timed("toHost", () -> delegate.toHost(t)); }

    @Override
    public void copyFromHost(Tensor dst, float[] src, int srcOffset) {
        timed("copyFromHost", 0, () -> delegate.copyFromHost(dst, src, srcOffset));
    }

    @Override
    public Tensor repeatedStep(Object key, Tensor[] inputs, RepeatedStep step) {
        return delegate.repeatedStep(key, inputs, step);
    }

    @Override
    public void fill(Tensor t, float value) { timed("fill", 0, () -> delegate.fill(t, value)); }

    @Override
    public void copy(Tensor dst, Tensor src) { timed("copy", 0, () -> delegate.copy(dst, src)); }

    @Override
    public void freezeWeights(List<Tensor> weights) { timed("freezeWeights", 0, () -> delegate.freezeWeights(weights)); }

    // ---- linear algebra ------------------------------------------------------------------------------------

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB,
                     float beta, Tensor c, int ldc, long strideC, int batch) {
        timed("gemm", 2.0 * m * n * k * batch, () -> delegate.gemm(transA, transB, m, n, k, alpha, a, lda, strideA,
                b, ldb, strideB, beta, c, ldc, strideC, batch));
    }

    @Override
    public void addRowBias(Tensor y, Tensor bias, int rows, int cols) {
        timed("addRowBias", 0, () -> delegate.addRowBias(y, bias, rows, cols));
    }

    @Override
    public void addRowBiasResidual(Tensor y, Tensor bias, Tensor residual, int rows, int cols) {
        timed("addRowBiasResidual", 0, () -> delegate.addRowBiasResidual(y, bias, residual, rows, cols));
    }

    @Override
    public void sumRows(Tensor dBias, Tensor dy, int rows, int cols) {
        timed("sumRows", 0, () -> delegate.sumRows(dBias, dy, rows, cols));
    }

    @Override
    public void transpose(Tensor out, Tensor in, int batch, int rows, int cols) {
        timed("transpose", 0, () -> delegate.transpose(out, in, batch, rows, cols));
    }

    // ---- convolution ---------------------------------------------------------------------------------------

    @Override
    public void conv2d(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape shape) {
        timed(convName("conv2d", shape), shape.flops(), () -> delegate.conv2d(out, in, weight, bias, shape));
    }

    @Override
    public void conv2dResidual(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor residual,
                               Conv2dShape shape) {
        timed(convName("conv2dResidual", shape), shape.flops(),
                () -> delegate.conv2dResidual(out, in, weight, bias, residual, shape));
    }

    @Override
    public void conv2dSampleBias(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor sampleBias,
                                 Conv2dShape shape) {
        timed(convName("conv2dSampleBias", shape), shape.flops(),
                () -> delegate.conv2dSampleBias(out, in, weight, bias, sampleBias, shape));
    }

    @Override
    public void conv2dBackwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape shape) {
        timed(convName("conv2dBackwardData", shape), shape.flops(),
                () -> delegate.conv2dBackwardData(dIn, dOut, weight, shape));
    }

    @Override
    public void conv2dBackwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape shape) {
        timed(convName("conv2dBackwardWeight", shape), dWeight != null ? shape.flops() : 0,
                () -> delegate.conv2dBackwardWeight(dWeight, dBias, dOut, in, shape));
    }

    /** 1×1 and 3×3 convolutions run different code paths: keep them apart in the report. */
    private static String convName(String op, Conv2dShape shape) {
        return op + "[" + shape.r() + "x" + shape.s() + (shape.stride() > 1 ? "/" + shape.stride() : "") + "]";
    }

    // ---- normalisation -------------------------------------------------------------------------------------

    @Override
    public void groupNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int n, int c, int hw, int groups, float eps) {
        timed("groupNorm", 0, () -> delegate.groupNorm(out, mean, rstd, in, gamma, beta, n, c, hw, groups, eps));
    }

    @Override
    public void groupNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int n, int c, int hw, int groups) {
        timed("groupNormBackward", 0, () -> delegate.groupNormBackward(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma,
                n, c, hw, groups));
    }

    @Override
    public void groupNormSilu(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                              int n, int c, int hw, int groups, float eps) {
        timed("groupNormSilu", 0, () -> delegate.groupNormSilu(out, mean, rstd, in, gamma, beta, n, c, hw, groups,
                eps));
    }

    @Override
    public void groupNormSiluBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in, Tensor mean,
                                      Tensor rstd, Tensor gamma, Tensor beta, int n, int c, int hw, int groups,
                                      float eps) {
        timed("groupNormSiluBackward", 0, () -> delegate.groupNormSiluBackward(dIn, dGamma, dBeta, dOut, in, mean,
                rstd, gamma, beta, n, c, hw, groups, eps));
    }

    @Override
    public void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int rows, int cols, float eps) {
        timed("layerNorm", 0, () -> delegate.layerNorm(out, mean, rstd, in, gamma, beta, rows, cols, eps));
    }

    @Override
    public void layerNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int rows, int cols) {
        timed("layerNormBackward", 0, () -> delegate.layerNormBackward(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma,
                rows, cols));
    }

    @Override
    public void softmax(Tensor out, Tensor in, int rows, int cols) {
        timed("softmax", 0, () -> delegate.softmax(out, in, rows, cols));
    }

    @Override
    public void softmaxBackward(Tensor dIn, Tensor dOut, Tensor out, int rows, int cols) {
        timed("softmaxBackward", 0, () -> delegate.softmaxBackward(dIn, dOut, out, rows, cols));
    }

    // ---- attention -----------------------------------------------------------------------------------------

    @Override
    public void attention(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                          int b, int heads, int lq, int lk, int d, float scale, boolean causal) {
        // q kᵀ and probs · v: two products of lq × lk × d per head
        timed("attention", 4.0 * b * heads * lq * lk * d,
                () -> delegate.attention(out, probs, q, k, v, b, heads, lq, lk, d, scale, causal));
    }

    @Override
    public int[] attentionSavedShape(int b, int heads, int lq, int lk) {
        return delegate.attentionSavedShape(b, heads, lq, lk);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor probs, int b, int heads, int lq, int lk, int d, float scale) {
        // dv, dprobs, dq, dk: four products of lq × lk × d per head
        timed("attentionBackward", 8.0 * b * heads * lq * lk * d,
                () -> delegate.attentionBackward(dq, dk, dv, dOut, q, k, v, probs, b, heads, lq, lk, d, scale));
    }

    @Override
    public void attentionWithStats(Tensor out, Tensor stats, Tensor q, Tensor k, Tensor v,
                                   int b, int heads, int lq, int lk, int d, float scale) {
        timed("attention", 4.0 * b * heads * lq * lk * d,
                () -> delegate.attentionWithStats(out, stats, q, k, v, b, heads, lq, lk, d, scale));
    }

    @Override
    public void attentionBackwardFromStats(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                           Tensor out, Tensor stats, int b, int heads, int lq, int lk, int d, float scale) {
        // the four products of attentionBackward counted (the recomputed q kᵀ is not): rates comparable across kernels
        timed("attentionBackward", 8.0 * b * heads * lq * lk * d,
                () -> delegate.attentionBackwardFromStats(dq, dk, dv, dOut, q, k, v, out, stats, b, heads, lq, lk, d, scale));
    }

    // ---- activations ---------------------------------------------------------------------------------------

    @Override
    public void silu(Tensor out, Tensor in, long n) { timed("silu", 0, () -> delegate.silu(out, in, n)); }

    @Override
    public void siluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        timed("siluBackward", 0, () -> delegate.siluBackward(dIn, dOut, in, n));
    }

    @Override
    public void gelu(Tensor out, Tensor in, long n) { timed("gelu", 0, () -> delegate.gelu(out, in, n)); }

    @Override
    public void geluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        timed("geluBackward", 0, () -> delegate.geluBackward(dIn, dOut, in, n));
    }

    @Override
    public void quickGelu(Tensor out, Tensor in, long n) { timed("quickGelu", 0, () -> delegate.quickGelu(out, in, n)); }

    @Override
    public void quickGeluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        timed("quickGeluBackward", 0, () -> delegate.quickGeluBackward(dIn, dOut, in, n));
    }

    @Override
    public void geglu(Tensor out, Tensor in, int rows, int cols) {
        timed("geglu", 0, () -> delegate.geglu(out, in, rows, cols));
    }

    @Override
    public void gegluBackward(Tensor dIn, Tensor dOut, Tensor in, int rows, int cols) {
        timed("gegluBackward", 0, () -> delegate.gegluBackward(dIn, dOut, in, rows, cols));
    }

    @Override
    public void gegluBias(Tensor out, Tensor in, Tensor bias, int rows, int cols) {
        timed("gegluBias", 0, () -> delegate.gegluBias(out, in, bias, rows, cols));
    }

    @Override
    public void gegluBiasBackward(Tensor dIn, Tensor dOut, Tensor in, Tensor bias, int rows, int cols) {
        timed("gegluBiasBackward", 0, () -> delegate.gegluBiasBackward(dIn, dOut, in, bias, rows, cols));
    }

    // ---- shape ops -----------------------------------------------------------------------------------------

    @Override
    public void upsampleNearest2x(Tensor out, Tensor in, int nc, int h, int w) {
        timed("upsampleNearest2x", 0, () -> delegate.upsampleNearest2x(out, in, nc, h, w));
    }

    @Override
    public void upsampleNearest2xBackward(Tensor dIn, Tensor dOut, int nc, int h, int w) {
        timed("upsampleNearest2xBackward", 0, () -> delegate.upsampleNearest2xBackward(dIn, dOut, nc, h, w));
    }

    @Override
    public void concatChannels(Tensor out, Tensor a, Tensor b, int n, int ca, int cb, int hw) {
        timed("concatChannels", 0, () -> delegate.concatChannels(out, a, b, n, ca, cb, hw));
    }

    @Override
    public void splitChannels(Tensor dA, Tensor dB, Tensor dOut, int n, int ca, int cb, int hw) {
        timed("splitChannels", 0, () -> delegate.splitChannels(dA, dB, dOut, n, ca, cb, hw));
    }

    // ---- elementwise arithmetic ----------------------------------------------------------------------------

    @Override
    public void add(Tensor out, Tensor a, Tensor b, long n) { timed("add", 0, () -> delegate.add(out, a, b, n)); }

    @Override
    public void axpy(Tensor y, float alpha, Tensor x, long n) { timed("axpy", 0, () -> delegate.axpy(y, alpha, x, n)); }

    @Override
    public void scale(Tensor out, Tensor x, float alpha, long n) {
        timed("scale", 0, () -> delegate.scale(out, x, alpha, n));
    }

    @Override
    public void linearCombination(Tensor out, float alpha, Tensor a, float beta, Tensor b, long n) {
        timed("linearCombination", 0, () -> delegate.linearCombination(out, alpha, a, beta, b, n));
    }

    @Override
    public void addChannelBias(Tensor y, Tensor bias, int n, int c, int hw) {
        timed("addChannelBias", 0, () -> delegate.addChannelBias(y, bias, n, c, hw));
    }

    @Override
    public void sumChannelBias(Tensor dBias, Tensor dy, int n, int c, int hw) {
        timed("sumChannelBias", 0, () -> delegate.sumChannelBias(dBias, dy, n, c, hw));
    }

    // ---- embeddings, losses, optimiser ---------------------------------------------------------------------

    @Override
    public void timestepEmbedding(Tensor out, Tensor timesteps, int dim, boolean flipSinToCos, float freqShift,
                                  float maxPeriod) {
        timed("timestepEmbedding", 0,
                () -> delegate.timestepEmbedding(out, timesteps, dim, flipSinToCos, freqShift, maxPeriod));
    }

    @Override
    public void timestepEmbedding(Tensor out, float[] timesteps, int dim, boolean flipSinToCos, float freqShift,
                                  float maxPeriod) {
        timed("timestepEmbedding", 0,
                () -> delegate.timestepEmbedding(out, timesteps, dim, flipSinToCos, freqShift, maxPeriod));
    }

    @Override
    public float mseLoss(Tensor pred, Tensor target, long n) {
        return timed("mseLoss", () -> delegate.mseLoss(pred, target, n));
    }

    @Override
    public void mseLossBackward(Tensor dPred, Tensor pred, Tensor target, long n, float scale) {
        timed("mseLossBackward", 0, () -> delegate.mseLossBackward(dPred, pred, target, n, scale));
    }

    @Override
    public void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, long n, int step, float lr, float beta1,
                         float beta2, float eps, float weightDecay) {
        timed("adamStep", 0, () -> delegate.adamStep(param, grad, m, v, n, step, lr, beta1, beta2, eps, weightDecay));
    }

    @Override
    public void close() { delegate.close(); }
}
