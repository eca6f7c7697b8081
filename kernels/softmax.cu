// softmax over the last dimension of [rows, cols] and its backward; one warp per row.
// https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html
// row sums accumulate in double (as the cpu reference does).
#include "common.cuh"

// out = softmax(in) per row. with causal set, row r is query i = r % queries and keys j > i are excluded
// (probability 0), as in clip's causal self-attention. out may alias in.
extern "C" __global__ void softmax_forward(float* out, const float* in, int rows, int cols, int causal, int queries) {
    i64 row = (i64) blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;
    int valid = causal ? min(cols, (int) (row % queries) + 1) : cols;
    const float* x = in + row * cols;
    float* y = out + row * cols;

    float maxValue = -INFINITY;
    for (int j = lane; j < valid; j += WARP_SIZE) maxValue = fmaxf(maxValue, x[j]);
    maxValue = warp_max(maxValue);
    double sum = 0.0;
    for (int j = lane; j < valid; j += WARP_SIZE) sum += expf(x[j] - maxValue);
    sum = warp_sum_double(sum);
    for (int j = lane; j < cols; j += WARP_SIZE) y[j] = j < valid ? (float) (expf(x[j] - maxValue) / sum) : 0.0f;
}

// d = out * (dOut - sum(dOut * out)) per row; dIn += d when accumulate, else dIn = d. dIn may alias dOut.
extern "C" __global__ void softmax_backward(float* dIn, const float* dOut, const float* out, int rows, int cols,
                                            int accumulate) {
    i64 row = (i64) blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;
    const float* dy = dOut + row * cols;
    const float* y = out + row * cols;
    float* dx = dIn + row * cols;

    double dot = 0.0;
    for (int j = lane; j < cols; j += WARP_SIZE) dot += (double) dy[j] * y[j];
    dot = warp_sum_double(dot);
    for (int j = lane; j < cols; j += WARP_SIZE) {
        float d = (float) (y[j] * (dy[j] - dot));
        dx[j] = accumulate ? dx[j] + d : d;
    }
}
