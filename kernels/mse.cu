// mean squared error and its gradient. the loss is reduced in two deterministic stages (fixed grid, fixed
// order): per-block partial sums in double, then one block adds the partials.
#include "common.cuh"

// partial[blockIdx.x] = sum over this block's grid-stride share of (pred - target)^2
extern "C" __global__ void mse_partial(double* partial, const float* pred, const float* target, i64 n) {
    double sum = 0.0;
    GRID_STRIDE_LOOP(i, n) { double d = (double) pred[i] - (double) target[i]; sum += d * d; }
    sum = block_sum_double(sum);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// loss[0] = sum(partial[0..count)) / n, as float; one block
extern "C" __global__ void mse_finish(float* loss, const double* partial, int count, i64 n) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
    sum = block_sum_double(sum);
    if (threadIdx.x == 0) loss[0] = (float) (sum / (double) n);
}

// dPred += factor * (pred - target), factor = scale * 2 / n
extern "C" __global__ void mse_backward(float* dPred, const float* pred, const float* target, float factor, i64 n) {
    GRID_STRIDE_LOOP(i, n) dPred[i] += factor * (pred[i] - target[i]);
}
