// elementwise arithmetic over flat buffers of n floats. outputs may alias inputs (no __restrict__).
// (fill is cuMemsetD32, no kernel.)
#include "common.cuh"

// out = a + b
extern "C" __global__ void add(float* out, const float* a, const float* b, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = a[i] + b[i];
}

// y += alpha * x
extern "C" __global__ void axpy(float* y, float alpha, const float* x, i64 n) {
    GRID_STRIDE_LOOP(i, n) y[i] += alpha * x[i];
}

// out = alpha * x
extern "C" __global__ void scale(float* out, const float* x, float alpha, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = alpha * x[i];
}

// out = alpha * a + beta * b
extern "C" __global__ void linear_combination(float* out, float alpha, const float* a, float beta, const float* b, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = alpha * a[i] + beta * b[i];
}
