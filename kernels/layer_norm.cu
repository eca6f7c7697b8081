// torch.nn.LayerNorm over the last dimension of in[rows, cols], forward and backward.
// https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html
// one warp per row (warp-shuffle reductions); the parameter gradients reduce over rows per column.
// sums accumulate in double (as the cpu reference does); elements stay float.
#include "common.cuh"

#define PARAM_ROWS 16   // blockDim.y of layer_norm_backward_params: row slices summed in a fixed order

extern "C" __global__ void layer_norm_forward(float* out, float* mean, float* rstd, const float* in,
                                              const float* gamma, const float* beta, int rows, int cols, float eps) {
    i64 row = (i64) blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;                    // whole warps leave together
    const float* x = in + row * cols;
    float* y = out + row * cols;

    double sum = 0.0;
    for (int j = lane; j < cols; j += WARP_SIZE) sum += x[j];
    double md = warp_sum_double(sum) / (double) cols;
    double squares = 0.0;
    for (int j = lane; j < cols; j += WARP_SIZE) { double d = x[j] - md; squares += d * d; }
    double rd = 1.0 / sqrt(warp_sum_double(squares) / (double) cols + (double) eps);
    for (int j = lane; j < cols; j += WARP_SIZE) y[j] = (float) ((x[j] - md) * rd * gamma[j] + beta[j]);
    if (lane == 0) {                             // saved for backward; may be null at inference
        if (mean) mean[row] = (float) md;
        if (rstd) rstd[row] = (float) rd;
    }
}

// dIn += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dOut * gamma
extern "C" __global__ void layer_norm_backward_input(float* dIn, const float* dOut, const float* in,
                                                     const float* mean, const float* rstd, const float* gamma,
                                                     int rows, int cols) {
    i64 row = (i64) blockIdx.x * (blockDim.x / WARP_SIZE) + threadIdx.x / WARP_SIZE;
    int lane = threadIdx.x % WARP_SIZE;
    if (row >= rows) return;
    const float* x = in + row * cols;
    const float* dy = dOut + row * cols;
    float* dx = dIn + row * cols;
    float m = mean[row], r = rstd[row];

    double sumDxhat = 0.0, sumDxhatXhat = 0.0;
    for (int j = lane; j < cols; j += WARP_SIZE) {
        float dxhat = dy[j] * gamma[j];
        sumDxhat += dxhat;
        sumDxhatXhat += dxhat * (x[j] - m) * r;
    }
    float meanDxhat = (float) (warp_sum_double(sumDxhat) / (double) cols);
    float meanDxhatXhat = (float) (warp_sum_double(sumDxhatXhat) / (double) cols);

    for (int j = lane; j < cols; j += WARP_SIZE) {
        float xhat = (x[j] - m) * r;
        dx[j] += r * (dy[j] * gamma[j] - meanDxhat - xhat * meanDxhatXhat);
    }
}

// the column sums of dGamma (dOut * xhat) and dBeta (dOut), rows split into gridDim.y slices so that the whole gpu
// sums even a few columns: slice blockIdx.y of columns [32 blockIdx.x, +32) into partialGamma[slice, col] and
// partialBeta[slice, col] (double; sum_rows_finish adds the slices into dGamma, dBeta). block (32, PARAM_ROWS).
// either output may be null.
extern "C" __global__ void layer_norm_backward_params(double* dGamma, double* dBeta, const float* dOut,
                                                      const float* in, const float* mean, const float* rstd, int rows,
                                                      int cols) {
    __shared__ double partialGamma[PARAM_ROWS][WARP_SIZE + 1];
    __shared__ double partialBeta[PARAM_ROWS][WARP_SIZE + 1];
    int col = blockIdx.x * WARP_SIZE + threadIdx.x;
    int perSlice = (rows + gridDim.y - 1) / gridDim.y;
    int first = blockIdx.y * perSlice, last = min(rows, first + perSlice);
    double sumGamma = 0.0, sumBeta = 0.0;
    if (col < cols) {
        for (int row = first + threadIdx.y; row < last; row += PARAM_ROWS) {
            i64 at = (i64) row * cols + col;
            float dy = dOut[at];
            sumGamma += dy * (in[at] - mean[row]) * rstd[row];
            sumBeta += dy;
        }
    }
    partialGamma[threadIdx.y][threadIdx.x] = sumGamma;
    partialBeta[threadIdx.y][threadIdx.x] = sumBeta;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        double g = 0.0, b = 0.0;
        for (int s = 0; s < PARAM_ROWS; s++) { g += partialGamma[s][threadIdx.x]; b += partialBeta[s][threadIdx.x]; }
        if (dGamma) dGamma[(i64) blockIdx.y * cols + col] = g;
        if (dBeta) dBeta[(i64) blockIdx.y * cols + col] = b;
    }
}
