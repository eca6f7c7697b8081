// a small cpu emulator of the cuda features the kernels use, so that their logic (indexing, reductions,
// barriers, warp shuffles) is tested on machines without a gpu. the threads of a block are cooperative fibers
// on one os thread: each runs until it waits at __syncthreads or a warp shuffle, and a barrier opens once every
// thread of its block (or warp) that has not exited waits there. blocks run one after another. a fiber starts
// on its own stack through ucontext; later switches use _setjmp/_longjmp, which skip ucontext's signal-mask
// system calls. include it before the kernel sources.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <csetjmp>
#include <cstring>
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
    ucontext_t start;       // first entry onto the fiber's stack
    std::jmp_buf resume;    // where it waits
    bool started = false;
    Wait wait = RUNNING;
};

constexpr size_t STACK_BYTES = 64 * 1024;
inline ucontext_t scheduler_context;
inline std::jmp_buf scheduler;
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
    _longjmp(scheduler, 1);
}

inline bool plain_launch();

inline void wait_at(Wait barrier) {
    if (plain_launch()) {
        std::fprintf(stderr, "emulator: a kernel launched without fibers waits at a barrier\n");
        std::abort();
    }
    fibers[current].wait = barrier;
    if (!_setjmp(fibers[current].resume)) _longjmp(scheduler, 1);
}

// runs one block: every fiber until it waits or exits, then opens the barriers everyone reached
inline void run_block(int threads) {
    fibers.assign(threads, Fiber{});
    while ((int) stacks.size() < threads) stacks.emplace_back(new char[STACK_BYTES]);
    shuffle_buffer.assign(threads, 0.0);
    for (int t = 0; t < threads; t++) {
        getcontext(&fibers[t].start);
        fibers[t].start.uc_stack.ss_sp = stacks[t].get();
        fibers[t].start.uc_stack.ss_size = STACK_BYTES;
        fibers[t].start.uc_link = nullptr;
        makecontext(&fibers[t].start, fiber_entry, 0);
    }
    for (;;) {
        for (int t = 0; t < threads; t++) {
            if (fibers[t].wait != RUNNING) continue;
            current = t;
            set_thread_index(t);
            if (!_setjmp(scheduler)) {
                if (fibers[t].started) _longjmp(fibers[t].resume, 1);
                fibers[t].started = true;
                swapcontext(&scheduler_context, &fibers[t].start);
            }
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

inline bool plain = false;   // threads run one after another, no fibers: for kernels that never wait
inline bool plain_launch() { return plain; }

template <class Kernel, class... Args>
void launch_plain(Kernel kernel, dim3 grid, dim3 block, Args... args) {
    gridDim = grid;
    blockDim = block;
    plain = true;
    int threads = (int) (block.x * block.y * block.z);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = {bx, by, bz};
                for (int t = 0; t < threads; t++) {
                    current = t;
                    set_thread_index(t);
                    kernel(args...);
                }
            }
    plain = false;
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
inline void __syncwarp() { emu::wait_at(emu::AT_WARP_BARRIER); }

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

// every lane reads srcLane's value (a broadcast when all lanes name the same lane)
template <class T>
T __shfl_sync(unsigned, T value, int srcLane) {
    int t = emu::current;
    int warp = t / 32;
    emu::shuffle_buffer[t] = (double) value;
    emu::wait_at(emu::AT_WARP_BARRIER);
    T other = (T) emu::shuffle_buffer[warp * 32 + (srcLane & 31)];
    emu::wait_at(emu::AT_WARP_BARRIER);
    return other;
}

inline float normcdff(float x) { return 0.5f * std::erfc(-x / std::sqrt(2.0f)); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline unsigned __float_as_uint(float x) { unsigned u; std::memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(unsigned u) { float x; std::memcpy(&x, &u, 4); return x; }
using std::min;
