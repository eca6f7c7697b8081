// shared helpers for the esd-native kernels: index types, grid-stride loops, warp and block reductions.
// every kernel is extern "C" so that the java side finds it by its plain name in the ptx.
// reductions accumulate in double, as the cpu reference does: the gpu's fp64 rate is ample for these
// memory-bound kernels, and it keeps gpu and cpu results within ~1e-7 of each other.
#pragma once

typedef long long i64;

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

// for (i64 i = first; i < n; i += whole grid): elementwise kernels use any grid size
#define GRID_STRIDE_LOOP(i, n) \
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64) blockDim.x * gridDim.x)

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
__device__ __forceinline__ double block_sum_double(double v) {
    __shared__ double partial[WARP_SIZE];
    int lane = threadIdx.x % WARP_SIZE;
    int warp = threadIdx.x / WARP_SIZE;
    int warps = blockDim.x / WARP_SIZE;
    v = warp_sum_double(v);
    __syncthreads();                      // a previous call may still be reading partial
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : 0.0;
    return warp_sum_double(v);
}
