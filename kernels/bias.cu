// biases and their gradient reductions: row bias y[rows, cols] += bias[cols]; channel bias over [n, c, hw],
// either shared by all samples (bias[c], convolutions) or per sample (bias[n, c], the resnet time embedding).
// gradient sums accumulate in double (as the cpu reference does).
#include "common.cuh"

#define SUM_ROWS 16   // blockDim.y of sum_rows: row slices summed in a fixed order

extern "C" __global__ void add_row_bias(float* y, const float* bias, int rows, int cols) {
    i64 n = (i64) rows * cols;
    GRID_STRIDE_LOOP(i, n) y[i] += bias[i % cols];
}

// the column sums of dy[rows, cols], rows split into gridDim.y slices so that the whole gpu sums even a few
// columns: slice blockIdx.y of columns [32 blockIdx.x, +32) into partial[slice, col] (double); block (32, SUM_ROWS)
extern "C" __global__ void sum_rows(double* partial, const float* dy, int rows, int cols) {
    __shared__ double slice[SUM_ROWS][WARP_SIZE + 1];
    int col = blockIdx.x * WARP_SIZE + threadIdx.x;
    int perSlice = (rows + gridDim.y - 1) / gridDim.y;
    int first = blockIdx.y * perSlice, last = min(rows, first + perSlice);
    double sum = 0.0;
    if (col < cols) {
        for (int row = first + threadIdx.y; row < last; row += SUM_ROWS) sum += dy[(i64) row * cols + col];
    }
    slice[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        double total = 0.0;
        for (int s = 0; s < SUM_ROWS; s++) total += slice[s][threadIdx.x];
        partial[(i64) blockIdx.y * cols + col] = total;
    }
}

// dBias[col] += the slices' partial sums, added in slice order (deterministic)
extern "C" __global__ void sum_rows_finish(float* dBias, const double* partial, int slices, int cols) {
    GRID_STRIDE_LOOP(col, cols) {
        double total = 0.0;
        for (int s = 0; s < slices; s++) total += partial[(i64) s * cols + col];
        dBias[col] += (float) total;
    }
}

// y[ni, ch, p] += perSample ? bias[ni, ch] : bias[ch]
extern "C" __global__ void add_channel_bias(float* y, const float* bias, int n, int c, int hw, int perSample) {
    i64 total = (i64) n * c * hw;
    GRID_STRIDE_LOOP(i, total) {
        i64 plane = i / hw;                       // ni * c + ch
        y[i] += bias[perSample ? plane : plane % c];
    }
}

// y[ni, ch, p] = (y + bias[ch]) + sampleBias[ni, ch]: a convolution's bias and the per-sample bias after it (the resnet
// time embedding) in one pass; bias may be null
extern "C" __global__ void add_channel_biases(float* y, const float* bias, const float* sampleBias, int n, int c, int hw) {
    i64 total = (i64) n * c * hw;
    GRID_STRIDE_LOOP(i, total) {
        i64 plane = i / hw;                       // ni * c + ch
        float v = y[i];
        if (bias) v += bias[plane % c];
        y[i] = v + sampleBias[plane];
    }
}

// perSample: dBias[ni, ch] += sum_p dy[ni, ch, p], one block per (ni, ch);
// else:      dBias[ch] += sum_{ni, p} dy[ni, ch, p], one block per ch
extern "C" __global__ void channel_bias_grad(float* dBias, const float* dy, int n, int c, int hw, int perSample) {
    int out = blockIdx.x;
    double sum = 0.0;
    if (perSample) {
        const float* plane = dy + (i64) out * hw;
        for (int p = threadIdx.x; p < hw; p += blockDim.x) sum += plane[p];
    } else {
        for (int ni = 0; ni < n; ni++) {
            const float* plane = dy + ((i64) ni * c + out) * hw;
            for (int p = threadIdx.x; p < hw; p += blockDim.x) sum += plane[p];
        }
    }
    sum = block_sum_double(sum);
    if (threadIdx.x == 0) dBias[out] += (float) sum;
}
