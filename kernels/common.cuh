// shared helpers for the esd-native kernels: index types, grid-stride loops, warp and block reductions.
// every kernel is extern "C" so that the java side finds it by its plain name in the ptx.
#pragma once

typedef long long i64;

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

// for (i64 i = first; i < n; i += whole grid): elementwise kernels use any grid size
#define GRID_STRIDE_LOOP(i, n) \
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64) blockDim.x * gridDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ double warp_sum_double(double v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// sum over the whole block, returned to every thread. blockDim.x must be a multiple of 32 (at most 1024).
// the summation order depends only on blockDim, so results are deterministic.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[WARP_SIZE];
    int lane = threadIdx.x % WARP_SIZE;
    int warp = threadIdx.x / WARP_SIZE;
    int warps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads();                      // a previous call may still be reading partial
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ double block_sum_double(double v) {
    __shared__ double partial_d[WARP_SIZE];
    int lane = threadIdx.x % WARP_SIZE;
    int warp = threadIdx.x / WARP_SIZE;
    int warps = blockDim.x / WARP_SIZE;
    v = warp_sum_double(v);
    __syncthreads();
    if (lane == 0) partial_d[warp] = v;
    __syncthreads();
    v = lane < warps ? partial_d[lane] : 0.0;
    return warp_sum_double(v);
}
