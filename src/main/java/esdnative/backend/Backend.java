package esdnative.backend;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.List;

/**
 * The operations every layer is built from, implemented once per device (the CPU reference and CUDA).
 *
 * <p>Conventions, as in llm.c:
 * <ul>
 *   <li>All tensors are float32, row-major, NCHW for images; attention activations are [batch, tokens, channels].</li>
 *   <li>Forward ops <b>overwrite</b> their output. Backward ops <b>accumulate</b> ({@code +=}) into every gradient
 *       they write, input gradients included, so residual and skip connections need no extra adds. A gradient
 *       argument may be {@code null} when it is not wanted.</li>
 *   <li>Dimensions are passed explicitly; a tensor argument must hold at least the elements the dimensions imply
 *       (its own shape is not consulted beyond its size).</li>
 *   <li>Results are deterministic: bit for bit the same whatever the thread count.</li>
 * </ul>
 */
public interface Backend extends AutoCloseable {

    /** Short name for logs: "cpu", "cuda". */
    String name();

    // ---- memory -------------------------------------------------------------------------------------------

    /** A new zero-filled tensor. */
    Tensor zeros(int... shape);

    /**
     * Opens a {@link Scope} on the calling thread: the tensors {@link #zeros} creates until it closes are recycled
     * then, except those kept. For passes that make many temporaries and keep few (inference): they reuse memory
     * instead of allocating afresh. Scopes nest. The default recycles nothing (the garbage collector frees).
     */
    default Scope openScope() { return Scope.NONE; }

    /**
     * Names what the tensors made from now on are for (e.g. "saved activations"), for a memory report: the CUDA
     * backend counts its device memory by these names. The default ignores them.
     */
    default void labelAllocations(String label) {}

    /**
     * Gives a tensor's memory back now (e.g. a model part no longer needed): neither it nor any view of its storage
     * may be used again. The default leaves it to the garbage collector; the CUDA backend's allocator reuses the
     * memory at once and refuses any later use of the tensor.
     */
    default void release(Tensor t) {}

    /**
     * Runs {@code step} on {@code inputs} and returns its output, a new tensor. {@code key} names everything the
     * step computes with besides its inputs (model, weights, constants; compared with equals): a backend may
     * record the step's work once per key and input shapes and replay the recording at later calls (CUDA graphs:
     * one launch instead of hundreds). This default runs the step every time.
     */
    default Tensor repeatedStep(Object key, Tensor[] inputs, RepeatedStep step) {
        return step.run(inputs);
    }

    /** A new tensor holding a copy of {@code data} (length = product of shape). */
    Tensor fromHost(float[] data, int... shape);

    /** A host copy of the tensor's elements. */
    float[] toHost(Tensor t);

    /** Copies {@code src.size()} host floats starting at {@code srcOffset} into {@code dst}. */
    void copyFromHost(Tensor dst, float[] src, int srcOffset);

    void fill(Tensor t, float value);

    /** dst = src (same number of elements). */
    void copy(Tensor dst, Tensor src);

    /**
     * Declares {@code weights} frozen: from now on only read, as GEMM operands or convolution weights (or copied
     * out). A backend may then store them the way it multiplies them: CUDA in bf16 precision keeps them as bfloat16
     * (half the memory; a {@link #copy} out reads the rounded values), and refuses any other use of them. The other
     * tensors sharing their buffers keep working as before. A buffer is frozen once: later calls on it change
     * nothing. The default keeps them as they are.
     */
    default void freezeWeights(List<Tensor> weights) {}

    // ---- linear algebra ------------------------------------------------------------------------------------

    /**
     * Row-major GEMM, batched over {@code batch} matrices spaced by the given strides (elements):
     * C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b], where op(A) is [m, k], op(B) is [k, n], C is [m, n];
     * op(X) = Xᵀ when its trans flag is set. lda/ldb/ldc are the row strides of A, B, C as stored.
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
              Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB,
              float beta, Tensor c, int ldc, long strideC, int batch);

    /** y[rows, cols] += bias[cols] broadcast over rows. */
    void addRowBias(Tensor y, Tensor bias, int rows, int cols);

    /**
     * y[rows, cols] = (y + bias[cols]) + residual: a linear layer's bias and the residual connection after it. This
     * default composes {@link #addRowBias} and {@link #add}; a backend may do both in one pass. residual must not
     * alias y.
     */
    default void addRowBiasResidual(Tensor y, Tensor bias, Tensor residual, int rows, int cols) {
        addRowBias(y, bias, rows, cols);
        add(y, y, residual, (long) rows * cols);
    }

    /** dBias[cols] += Σ_rows dy[rows, cols]. */
    void sumRows(Tensor dBias, Tensor dy, int rows, int cols);

    /** out[b, c, r] = in[b, r, c]: transposes the last two dimensions, e.g. [N, C, HW] ↔ [N, HW, C]. */
    void transpose(Tensor out, Tensor in, int batch, int rows, int cols);

    // ---- convolution ---------------------------------------------------------------------------------------

    /** out[n, k, oh, ow] = conv(in[n, c, h, w], weight[k, c, r, s]) + bias[k] (bias may be null). */
    void conv2d(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape shape);

    /**
     * {@link #conv2d}, then out += residual [n, k, oh, ow]: a convolution followed by a residual connection. This
     * default composes {@link #conv2d} and {@link #add}; a backend may add bias and residual in one pass. residual
     * must not alias out.
     */
    default void conv2dResidual(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor residual,
                                Conv2dShape shape) {
        conv2d(out, in, weight, bias, shape);
        add(out, out, residual, (long) shape.n() * shape.k() * shape.outH() * shape.outW());
    }

    /**
     * {@link #conv2d}, then out[n, k, ·] += sampleBias[n, k]: a convolution followed by a per-sample channel bias (the
     * ResNet block's time embedding). This default composes {@link #conv2d} and {@link #addChannelBias}; a backend
     * may add both biases in one pass.
     */
    default void conv2dSampleBias(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor sampleBias,
                                  Conv2dShape shape) {
        conv2d(out, in, weight, bias, shape);
        addChannelBias(out, sampleBias, shape.n(), shape.k(), shape.outH() * shape.outW());
    }

    /** dIn += convᵀ(dOut, weight). */
    void conv2dBackwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape shape);

    /** dWeight += corr(in, dOut); dBias[k] += Σ dOut[:, k] (either may be null). */
    void conv2dBackwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape shape);

    // ---- normalisation -------------------------------------------------------------------------------------

    /**
     * torch.nn.GroupNorm over in[n, c, hw] with {@code groups} groups (biased variance):
     * out = (x - mean) * rstd * gamma[c] + beta[c]; saves mean[n*groups] and rstd[n*groups] for backward.
     */
    void groupNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                   int n, int c, int hw, int groups, float eps);

    void groupNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                           Tensor mean, Tensor rstd, Tensor gamma, int n, int c, int hw, int groups);

    /**
     * {@link #groupNorm} then SiLU, as every ResNet block begins: out = silu(groupNorm(in)); saves mean and rstd.
     * The normalised values are not kept: {@link #groupNormSiluBackward} recomputes them. This default composes the
     * two ops (a backend may fuse them: one pass over memory less each way, and no normalised tensor to keep).
     */
    default void groupNormSilu(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                               int n, int c, int hw, int groups, float eps) {
        Tensor normed = zeros(n, c, hw);
        groupNorm(normed, mean, rstd, in, gamma, beta, n, c, hw, groups, eps);
        silu(out, normed, normed.size());
    }

    /**
     * The backward of {@link #groupNormSilu}, from the mean and rstd it saved (and the gamma, beta and eps it ran
     * with): dIn, dGamma, dBeta += theirs, as {@link #siluBackward} then {@link #groupNormBackward}. This default
     * recomputes the normalised values with {@link #groupNorm} (the same statistics, so the same values) and
     * composes the two backward ops.
     */
    default void groupNormSiluBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in, Tensor mean,
                                       Tensor rstd, Tensor gamma, Tensor beta, int n, int c, int hw, int groups,
                                       float eps) {
        if (dIn == null && dGamma == null && dBeta == null) return;
        Tensor normed = zeros(n, c, hw);
        groupNorm(normed, null, null, in, gamma, beta, n, c, hw, groups, eps);
        Tensor dNormed = zeros(n, c, hw);
        siluBackward(dNormed, dOut, normed, normed.size());
        groupNormBackward(dIn, dGamma, dBeta, dNormed, in, mean, rstd, gamma, n, c, hw, groups);
    }

    /** torch.nn.LayerNorm over the last dimension of in[rows, cols]; saves mean[rows], rstd[rows]. */
    void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                   int rows, int cols, float eps);

    void layerNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                           Tensor mean, Tensor rstd, Tensor gamma, int rows, int cols);

    /** Softmax over the last dimension of in[rows, cols]. */
    void softmax(Tensor out, Tensor in, int rows, int cols);

    /** dIn += out * (dOut - Σ dOut * out), per row. */
    void softmaxBackward(Tensor dIn, Tensor dOut, Tensor out, int rows, int cols);

    // ---- attention -----------------------------------------------------------------------------------------

    /**
     * Multi-head scaled-dot-product attention as diffusers' and CLIP's Attention compute it.
     * q[b, lq, heads*d], k and v [b, lk, heads*d] → out[b, lq, heads*d];
     * per head: probs = softmax(scale · q kᵀ (+ causal mask: key j > query i is excluded)), out = probs · v.
     * {@code probs} receives what {@link #attentionBackward} needs, or is null when not needed: a tensor of
     * {@link #attentionSavedShape} (the probabilities, unless the backend recomputes them).
     */
    void attention(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                   int b, int heads, int lq, int lk, int d, float scale, boolean causal);

    /**
     * The shape of what {@link #attention} saves for its backward: the probabilities [b, heads, lq, lk]; a backend
     * that recomputes them from q, k and v saves less (CUDA's flash attention: each row's log-sum-exp [b, heads, lq]).
     */
    default int[] attentionSavedShape(int b, int heads, int lq, int lk) {
        return new int[] {b, heads, lq, lk};
    }

    /** Gradients of {@link #attention} (non-causal), from what it saved. */
    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                           Tensor probs, int b, int heads, int lq, int lk, int d, float scale);

    /**
     * {@link #attention} without a mask, keeping for the backward not the probabilities [b, heads, lq, lk] but each
     * query's log-sum-exp of its scaled scores: {@code stats} [b, heads, lq], or null when no backward follows.
     * A backend may then never hold the probability matrix (the CPU's fused kernel computes it tile by tile); this
     * default runs {@link #attention} and leaves stats for its {@link #attentionBackwardFromStats}, which does not
     * read them.
     */
    default void attentionWithStats(Tensor out, Tensor stats, Tensor q, Tensor k, Tensor v,
                                    int b, int heads, int lq, int lk, int d, float scale) {
        attention(out, null, q, k, v, b, heads, lq, lk, d, scale, false);
    }

    /**
     * Gradients of {@link #attentionWithStats} from its inputs, its output {@code out} and its {@code stats}. This
     * default recomputes the probabilities (a forward into temporaries) and runs {@link #attentionBackward}.
     */
    default void attentionBackwardFromStats(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                            Tensor out, Tensor stats, int b, int heads, int lq, int lk, int d, float scale) {
        Tensor probs = zeros(b, heads, lq, lk);
        attention(zeros(out.shape()), probs, q, k, v, b, heads, lq, lk, d, scale, false);
        attentionBackward(dq, dk, dv, dOut, q, k, v, probs, b, heads, lq, lk, d, scale);
    }

    // ---- activations (elementwise over n elements) ---------------------------------------------------------

    void silu(Tensor out, Tensor in, long n);

    void siluBackward(Tensor dIn, Tensor dOut, Tensor in, long n);

    /** Exact GELU: x · Φ(x) with the error function. */
    void gelu(Tensor out, Tensor in, long n);

    void geluBackward(Tensor dIn, Tensor dOut, Tensor in, long n);

    /** CLIP's quick GELU: x · sigmoid(1.702 x). */
    void quickGelu(Tensor out, Tensor in, long n);

    void quickGeluBackward(Tensor dIn, Tensor dOut, Tensor in, long n);

    /** diffusers GEGLU after its projection: in[rows, 2*cols] = [h | gate] → out[rows, cols] = h · gelu(gate). */
    void geglu(Tensor out, Tensor in, int rows, int cols);

    void gegluBackward(Tensor dIn, Tensor dOut, Tensor in, int rows, int cols);

    /**
     * {@link #geglu} of in + bias, bias [2·cols] broadcast over the rows (the projection's bias), without writing the
     * biased input anywhere. This default adds the bias to a copy ({@link #addRowBias}) and runs {@link #geglu}; a
     * backend may add it as the kernel reads in (no bias pass over in).
     */
    default void gegluBias(Tensor out, Tensor in, Tensor bias, int rows, int cols) {
        geglu(out, biasedCopy(in, bias, rows, 2 * cols), rows, cols);
    }

    /** The backward of {@link #gegluBias}: dIn (the gradient of in, and of in + bias) += ∂/∂in. */
    default void gegluBiasBackward(Tensor dIn, Tensor dOut, Tensor in, Tensor bias, int rows, int cols) {
        gegluBackward(dIn, dOut, biasedCopy(in, bias, rows, 2 * cols), rows, cols);
    }

    /** A new [rows, cols] tensor: in's first rows·cols elements plus bias[cols] on every row. */
    private Tensor biasedCopy(Tensor in, Tensor bias, int rows, int cols) {
        Tensor biased = zeros(rows, cols);
        copy(biased, new Tensor(in.storage(), in.offset(), rows, cols));
        addRowBias(biased, bias, rows, cols);
        return biased;
    }

    // ---- shape ops -----------------------------------------------------------------------------------------

    /** Nearest-neighbour 2× upsampling: in[nc, h, w] → out[nc, 2h, 2w] (nc = batch × channels). */
    void upsampleNearest2x(Tensor out, Tensor in, int nc, int h, int w);

    /** dIn[nc, h, w] += the sum of each 2×2 block of dOut. */
    void upsampleNearest2xBackward(Tensor dIn, Tensor dOut, int nc, int h, int w);

    /** Channel concatenation: out[n, ca+cb, hw] = [a[n, ca, hw] | b[n, cb, hw]]. */
    void concatChannels(Tensor out, Tensor a, Tensor b, int n, int ca, int cb, int hw);

    /** The backward of {@link #concatChannels}: dA += dOut[:, :ca], dB += dOut[:, ca:] (either may be null). */
    void splitChannels(Tensor dA, Tensor dB, Tensor dOut, int n, int ca, int cb, int hw);

    // ---- elementwise arithmetic ----------------------------------------------------------------------------

    /** out = a + b. out may alias a or b. */
    void add(Tensor out, Tensor a, Tensor b, long n);

    /** y += alpha · x. */
    void axpy(Tensor y, float alpha, Tensor x, long n);

    /** out = alpha · x. out may alias x. */
    void scale(Tensor out, Tensor x, float alpha, long n);

    /** out = alpha · a + beta · b (the DDIM update and the ESD target). out may alias a or b. */
    void linearCombination(Tensor out, float alpha, Tensor a, float beta, Tensor b, long n);

    /** y[n, c, hw] += bias[n, c]: a per-sample channel bias, e.g. the time embedding in a ResNet block. */
    void addChannelBias(Tensor y, Tensor bias, int n, int c, int hw);

    /** dBias[n, c] += Σ_hw dy[n, c, hw]. */
    void sumChannelBias(Tensor dBias, Tensor dy, int n, int c, int hw);

    // ---- embeddings, losses, optimiser ---------------------------------------------------------------------

    /**
     * diffusers' get_timestep_embedding: out[n, dim] for timesteps[n]; half = dim/2,
     * freq_i = exp(-ln(maxPeriod) · i / (half - freqShift)), [sin(t·freq) | cos(t·freq)], swapped when
     * flipSinToCos, zero-padded when dim is odd.
     */
    void timestepEmbedding(Tensor out, float[] timesteps, int dim, boolean flipSinToCos, float freqShift,
                           float maxPeriod);

    /**
     * {@link #timestepEmbedding} of timesteps[n] held in a tensor, so that a recorded step reads the values of each
     * replay. This default copies them to the host.
     */
    default void timestepEmbedding(Tensor out, Tensor timesteps, int dim, boolean flipSinToCos, float freqShift,
                                   float maxPeriod) {
        timestepEmbedding(out, toHost(timesteps), dim, flipSinToCos, freqShift, maxPeriod);
    }

    /** mean((pred - target)²) over n elements. */
    float mseLoss(Tensor pred, Tensor target, long n);

    /** dPred += scale · 2 (pred - target) / n. */
    void mseLossBackward(Tensor dPred, Tensor pred, Tensor target, long n, float scale);

    /**
     * One torch.optim.Adam step (L2 weight decay added to the gradient, as torch does) over n elements;
     * {@code step} counts from 1 and drives the bias corrections.
     */
    void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, long n, int step, float lr, float beta1,
                  float beta2, float eps, float weightDecay);

    @Override
    void close();
}
