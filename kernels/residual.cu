// a layer's bias and the residual connection after it in one pass over the output: y = (y + bias) + residual,
// where y is a GEMM's fresh result (a convolution's [n, c, hw] or a linear layer's [rows, cols]). separately, the
// bias pass and the residual add each read and write all of y. outputs may not alias the residual.
#include "common.cuh"

// y[ni, ch, p] = (y + bias[ch]) + residual[ni, ch, p]; bias may be null (then y += residual)
extern "C" __global__ void add_channel_bias_residual(float* y, const float* bias, const float* residual,
                                                     int n, int c, int hw) {
    i64 total = (i64) n * c * hw;
    GRID_STRIDE_LOOP(i, total) {
        float v = y[i];
        if (bias) v += bias[(i / hw) % c];
        y[i] = v + residual[i];
    }
}

// y[row, col] = (y + bias[col]) + residual[row, col]
extern "C" __global__ void add_row_bias_residual(float* y, const float* bias, const float* residual, int rows, int cols) {
    i64 total = (i64) rows * cols;
    GRID_STRIDE_LOOP(i, total) y[i] = (y[i] + bias[i % cols]) + residual[i];
}
