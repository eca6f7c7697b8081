package esdnative.backend.cuda;

import java.util.List;

import static esdnative.backend.cuda.Kernel.Param.F32;
import static esdnative.backend.cuda.Kernel.Param.I32;
import static esdnative.backend.cuda.Kernel.Param.I64;
import static esdnative.backend.cuda.Kernel.Param.PTR;

/**
 * Every kernel in {@code kernels/*.cu}: the PTX module (file name) it is compiled into, its name, and its C
 * parameter list. Launches are checked against the parameter list, and the list against the PTX when the
 * module loads (and by a unit test without a GPU), so an {@code int} passed where the kernel takes a 64-bit
 * count cannot slip through.
 */
enum Kernel {
    // arithmetic.cu
    ADD("arithmetic", "add", PTR, PTR, PTR, I64),
    AXPY("arithmetic", "axpy", PTR, F32, PTR, I64),
    SCALE("arithmetic", "scale", PTR, PTR, F32, I64),
    LINEAR_COMBINATION("arithmetic", "linear_combination", PTR, F32, PTR, F32, PTR, I64),
    // activations.cu
    SILU_FORWARD("activations", "silu_forward", PTR, PTR, I64),
    SILU_BACKWARD("activations", "silu_backward", PTR, PTR, PTR, I64),
    GELU_FORWARD("activations", "gelu_forward", PTR, PTR, I64),
    GELU_BACKWARD("activations", "gelu_backward", PTR, PTR, PTR, I64),
    QUICK_GELU_FORWARD("activations", "quick_gelu_forward", PTR, PTR, I64),
    QUICK_GELU_BACKWARD("activations", "quick_gelu_backward", PTR, PTR, PTR, I64),
    // geglu: (out, in, bias, rows, cols), (dIn, dOut, in, bias, rows, cols); bias may be null
    GEGLU_FORWARD("activations", "geglu_forward", PTR, PTR, PTR, I32, I32),
    GEGLU_BACKWARD("activations", "geglu_backward", PTR, PTR, PTR, PTR, I32, I32),
    // group_norm.cu: stats (partial, in, hw); apply (out, mean, rstd, partial, in, gamma, beta, c, hw, groups, eps,
    // silu); backward sums (partial, dOut, in, mean, rstd, gamma, beta, c, hw, groups, silu), input (dIn, partial,
    // dOut, in, mean, rstd, gamma, beta, c, hw, groups, silu), params (dGamma, dBeta, partial, n, c, pieces)
    GROUP_NORM_STATS("group_norm", "group_norm_stats", PTR, PTR, I32),
    GROUP_NORM_APPLY("group_norm", "group_norm_apply", PTR, PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, F32, I32),
    GROUP_NORM_BACKWARD_SUMS("group_norm", "group_norm_backward_sums",
            PTR, PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32),
    GROUP_NORM_BACKWARD_INPUT("group_norm", "group_norm_backward_input",
            PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32),
    GROUP_NORM_BACKWARD_PARAMS("group_norm", "group_norm_backward_params", PTR, PTR, PTR, I32, I32, I32),
    // layer_norm.cu
    LAYER_NORM_FORWARD("layer_norm", "layer_norm_forward", PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, F32),
    LAYER_NORM_BACKWARD_INPUT("layer_norm", "layer_norm_backward_input", PTR, PTR, PTR, PTR, PTR, PTR, I32, I32),
    LAYER_NORM_BACKWARD_PARAMS("layer_norm", "layer_norm_backward_params", PTR, PTR, PTR, PTR, PTR, PTR, I32, I32),
    // softmax.cu: (out, in, rows, cols, causal, queries), (dIn, dOut, out, rows, cols, accumulate)
    SOFTMAX_FORWARD("softmax", "softmax_forward", PTR, PTR, I32, I32, I32, I32),
    SOFTMAX_BACKWARD("softmax", "softmax_backward", PTR, PTR, PTR, I32, I32, I32),
    // layout.cu
    UPSAMPLE_NEAREST2X_FORWARD("layout", "upsample_nearest2x_forward", PTR, PTR, I32, I32, I32),
    UPSAMPLE_NEAREST2X_BACKWARD("layout", "upsample_nearest2x_backward", PTR, PTR, I32, I32, I32),
    CONCAT_CHANNELS("layout", "concat_channels", PTR, PTR, PTR, I32, I32, I32, I32),
    SPLIT_CHANNELS("layout", "split_channels", PTR, PTR, PTR, I32, I32, I32, I32),
    TRANSPOSE("layout", "transpose", PTR, PTR, I32, I32),
    // bias.cu
    ADD_ROW_BIAS("bias", "add_row_bias", PTR, PTR, I32, I32),
    SUM_ROWS("bias", "sum_rows", PTR, PTR, I32, I32),
    SUM_ROWS_FINISH("bias", "sum_rows_finish", PTR, PTR, I32, I32),
    ADD_CHANNEL_BIAS("bias", "add_channel_bias", PTR, PTR, I32, I32, I32, I32),
    ADD_CHANNEL_BIASES("bias", "add_channel_biases", PTR, PTR, PTR, I32, I32, I32),
    CHANNEL_BIAS_GRAD("bias", "channel_bias_grad", PTR, PTR, I32, I32, I32, I32),
    // residual.cu: (y, bias, residual, n, c, hw), (y, bias, residual, rows, cols)
    ADD_CHANNEL_BIAS_RESIDUAL("residual", "add_channel_bias_residual", PTR, PTR, PTR, I32, I32, I32),
    ADD_ROW_BIAS_RESIDUAL("residual", "add_row_bias_residual", PTR, PTR, PTR, I32, I32),
    // im2col.cu: (col|dIn, in|col, n, c, h, w, r, s, stride, pad, oh, ow)
    IM2COL("im2col", "im2col", PTR, PTR, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32),
    COL2IM("im2col", "col2im", PTR, PTR, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32),
    // flash_attention.cu: forward (out, lse, q, k, v, heads, lq, lk, d, scale, causal); backward query side
    // (dq, delta, dOut, q, k, v, lse, heads, lq, lk, d, scale, accumulate), key side (dk, dv, dOut, q, k, v, lse,
    // delta, heads, lq, lk, d, scale, accumulateDk, accumulateDv)
    FLASH_ATTENTION_FORWARD("flash_attention", "flash_attention_forward",
            PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32, I32),
    FLASH_ATTENTION_BACKWARD_QUERY("flash_attention", "flash_attention_backward_query",
            PTR, PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32, I32),
    FLASH_ATTENTION_BACKWARD_KEY("flash_attention", "flash_attention_backward_key",
            PTR, PTR, PTR, PTR, PTR, PTR, PTR, PTR, I32, I32, I32, I32, F32, I32, I32),
    // timestep_embedding.cu: (out, n, dim, flipSinToCos, freqShift, negLogMaxPeriod, t0, t1, t2, t3)
    TIMESTEP_EMBEDDING("timestep_embedding", "timestep_embedding", PTR, I32, I32, I32, F32, F32, F32, F32, F32, F32),
    // (out, timesteps, n, dim, flipSinToCos, freqShift, negLogMaxPeriod): the timesteps in device memory
    TIMESTEP_EMBEDDING_FROM_DEVICE("timestep_embedding", "timestep_embedding_from_device",
            PTR, PTR, I32, I32, I32, F32, F32),
    // mse.cu
    MSE_PARTIAL("mse", "mse_partial", PTR, PTR, PTR, I64),
    MSE_FINISH("mse", "mse_finish", PTR, PTR, I32, I64),
    MSE_BACKWARD("mse", "mse_backward", PTR, PTR, PTR, F32, I64),
    // adam.cu: (param, grad, m, v, n, beta1, 1-beta1, beta2, 1-beta2, eps, weightDecay, stepSize, bc2Sqrt)
    ADAM_STEP("adam", "adam_step", PTR, PTR, PTR, PTR, I64, F32, F32, F32, F32, F32, F32, F32, F32),
    // bf16.cu: casts (out, in, n); im2col_bf16 as im2col, writing bfloat16 columns
    CAST_TO_BF16("bf16", "cast_to_bf16", PTR, PTR, I64),
    CAST_FROM_BF16("bf16", "cast_from_bf16", PTR, PTR, I64),
    IM2COL_BF16("bf16", "im2col_bf16", PTR, PTR, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32);

    /** A kernel parameter's C type, as it appears in PTX. */
    enum Param {
        /** a device pointer ({@code float*}, {@code double*}): .u64 */
        PTR("u64"),
        /** {@code long long}: .u64 */
        I64("u64"),
        /** {@code int}: .u32 */
        I32("u32"),
        /** {@code float}: .f32 */
        F32("f32");

        final String ptxType;

        Param(String ptxType) { this.ptxType = ptxType; }
    }

    final String module;
    final String entry;
    final List<Param> params;

    Kernel(String module, String entry, Param... params) {
        this.module = module;
        this.entry = entry;
        this.params = List.of(params);
    }

    /** The PTX parameter types this kernel must have, e.g. [u64, f32, u64]. */
    List<String> ptxTypes() {
        return params.stream().map(p -> p.ptxType).toList();
    }
}
