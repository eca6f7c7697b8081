// a small cpu emulator of the cuda features the kernels use, so that their logic (indexing, reductions,
// barriers, warp shuffles) is tested on machines without a gpu. every cuda thread of a block is an os thread;
// blocks run one after another; __syncthreads is a block barrier, warp shuffles exchange through a buffer
// between two warp barriers. slow, but exact about ordering. include it before the kernel sources.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<double> shuffle_buffer;

inline int linear_thread() { return (int) (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }

template <class Kernel, class... Args>
void launch(Kernel kernel, dim3 grid, dim3 block, Args... args) {
    gridDim = grid;
    blockDim = block;
    int threads = (int) (block.x * block.y * block.z);
    int warps = (threads + 31) / 32;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                block_barrier = std::make_unique<std::barrier<>>(threads);
                warp_barriers.clear();
                for (int w = 0; w < warps; w++) {
                    warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32, threads - 32 * w)));
                }
                shuffle_buffer.assign(threads, 0.0);
                std::vector<std::thread> pool;
                for (int t = 0; t < threads; t++) {
                    pool.emplace_back([=] {
                        blockIdx = {bx, by, bz};
                        threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        kernel(args...);
                    });
                }
                for (auto& th : pool) th.join();
            }
}
} // namespace emu

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

template <class T>
T __shfl_xor_sync(unsigned, T value, int laneMask) {
    int t = emu::linear_thread();
    int warp = t / 32, lane = t % 32;
    emu::shuffle_buffer[t] = (double) value;
    emu::warp_barriers[warp]->arrive_and_wait();
    T other = (T) emu::shuffle_buffer[warp * 32 + (lane ^ laneMask)];
    emu::warp_barriers[warp]->arrive_and_wait();
    return other;
}

inline float normcdff(float x) { return 0.5f * std::erfc(-x / std::sqrt(2.0f)); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
using std::min;
