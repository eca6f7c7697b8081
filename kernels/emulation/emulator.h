// a small cpu emulator of the cuda features the kernels use, so that their logic (indexing, reductions,
// barriers, warp shuffles) is tested on machines without a gpu. the threads of a block are cooperative fibers
// (ucontext) on one os thread: each runs until it waits at __syncthreads or a warp shuffle, and a barrier opens
// once every thread of its block (or warp) that has not exited waits there. blocks run one after another.
// include it before the kernel sources.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <ucontext.h>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {
enum Wait { RUNNING, AT_BLOCK_BARRIER, AT_WARP_BARRIER, EXITED };

struct Fiber {
    ucontext_t context;
    Wait wait = RUNNING;
};

constexpr size_t STACK_BYTES = 64 * 1024;
inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline std::vector<std::unique_ptr<char[]>> stacks;
inline std::vector<double> shuffle_buffer;
inline int current = 0;
inline std::function<void()> body;

inline void set_thread_index(int t) {
    threadIdx = {t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
}

inline void fiber_entry() {
    body();
    fibers[current].wait = EXITED;
    swapcontext(&fibers[current].context, &scheduler);
}

inline void wait_at(Wait barrier) {
    fibers[current].wait = barrier;
    swapcontext(&fibers[current].context, &scheduler);
}

// runs one block: every fiber until it waits or exits, then opens the barriers everyone reached
inline void run_block(int threads) {
    fibers.assign(threads, Fiber{});
    while ((int) stacks.size() < threads) stacks.emplace_back(new char[STACK_BYTES]);
    shuffle_buffer.assign(threads, 0.0);
    for (int t = 0; t < threads; t++) {
        getcontext(&fibers[t].context);
        fibers[t].context.uc_stack.ss_sp = stacks[t].get();
        fibers[t].context.uc_stack.ss_size = STACK_BYTES;
        fibers[t].context.uc_link = nullptr;
        makecontext(&fibers[t].context, fiber_entry, 0);
    }
    for (;;) {
        for (int t = 0; t < threads; t++) {
            if (fibers[t].wait != RUNNING) continue;
            current = t;
            set_thread_index(t);
            swapcontext(&scheduler, &fibers[t].context);
        }
        bool released = false, allExited = true;
        for (int w = 0; w * 32 < threads; w++) {        // a warp barrier opens when its live lanes all wait there
            int end = std::min(threads, w * 32 + 32);
            bool all = true, any = false;
            for (int t = w * 32; t < end; t++) {
                if (fibers[t].wait == EXITED) continue;
                any = true;
                all &= fibers[t].wait == AT_WARP_BARRIER;
            }
            if (any && all) {
                for (int t = w * 32; t < end; t++) if (fibers[t].wait == AT_WARP_BARRIER) fibers[t].wait = RUNNING;
                released = true;
            }
        }
        if (released) continue;
        bool allAtBlock = true;
        for (auto& f : fibers) {
            if (f.wait == EXITED) continue;
            allExited = false;
            allAtBlock &= f.wait == AT_BLOCK_BARRIER;
        }
        if (allExited) return;
        if (!allAtBlock) {
            std::fprintf(stderr, "emulator: deadlock (threads wait at different barriers)\n");
            std::abort();
        }
        for (auto& f : fibers) if (f.wait == AT_BLOCK_BARRIER) f.wait = RUNNING;
    }
}

template <class Kernel, class... Args>
void launch(Kernel kernel, dim3 grid, dim3 block, Args... args) {
    gridDim = grid;
    blockDim = block;
    body = [=] { kernel(args...); };
    int threads = (int) (block.x * block.y * block.z);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = {bx, by, bz};
                run_block(threads);
            }
}
} // namespace emu

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() { emu::wait_at(emu::AT_BLOCK_BARRIER); }

template <class T>
T __shfl_xor_sync(unsigned, T value, int laneMask) {
    int t = emu::current;
    int warp = t / 32, lane = t % 32;
    emu::shuffle_buffer[t] = (double) value;
    emu::wait_at(emu::AT_WARP_BARRIER);
    T other = (T) emu::shuffle_buffer[warp * 32 + (lane ^ laneMask)];
    emu::wait_at(emu::AT_WARP_BARRIER);
    return other;
}

inline float normcdff(float x) { return 0.5f * std::erfc(-x / std::sqrt(2.0f)); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
using std::min;
