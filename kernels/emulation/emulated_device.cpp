// the kernels on the cpu emulator as a shared library, for running the java CudaBackend without a gpu (its tests
// load this through the foreign function api): emu_launch takes a kernel name, grid, block and a parameter array
// laid out exactly as cuLaunchKernel's kernelParams (one pointer to each argument's value).
#include "emulator.h"

#include "../activations.cu"
#include "../adam.cu"
#include "../arithmetic.cu"
#include "../bf16.cu"
#include "../bias.cu"
#include "../flash_attention.cu"
#include "../group_norm.cu"
#include "../im2col.cu"
#include "../layer_norm.cu"
#include "../layout.cu"
#include "../mse.cu"
#include "../residual.cu"
#include "../softmax.cu"
#include "../timestep_embedding.cu"

#include <map>
#include <string>
#include <utility>

namespace {
using Launcher = std::function<void(dim3, dim3, void**)>;

std::map<std::string, Launcher>& kernels() {
    static std::map<std::string, Launcher> table;
    return table;
}

template <class... A, size_t... I>
void call(void (*kernel)(A...), bool waits, dim3 grid, dim3 block, void** params, std::index_sequence<I...>) {
    if (waits) emu::launch(kernel, grid, block, *static_cast<A*>(params[I])...);
    else emu::launch_plain(kernel, grid, block, *static_cast<A*>(params[I])...);
}

// waits: the kernel uses __syncthreads or warp shuffles, so its threads must run as fibers
template <class... A>
void enroll(const char* name, bool waits, void (*kernel)(A...)) {
    kernels()[name] = [kernel, waits](dim3 grid, dim3 block, void** params) {
        call(kernel, waits, grid, block, params, std::index_sequence_for<A...>{});
    };
}

#define PLAIN(k) enroll(#k, false, k)
#define WAITS(k) enroll(#k, true, k)

const bool enrolled = [] {
    PLAIN(add); PLAIN(axpy); PLAIN(scale); PLAIN(linear_combination);
    PLAIN(silu_forward); PLAIN(silu_backward); PLAIN(gelu_forward); PLAIN(gelu_backward);
    PLAIN(quick_gelu_forward); PLAIN(quick_gelu_backward); PLAIN(geglu_forward); PLAIN(geglu_backward);
    WAITS(group_norm_stats); WAITS(group_norm_apply); WAITS(group_norm_backward_sums);
    WAITS(group_norm_backward_input); PLAIN(group_norm_backward_params);
    WAITS(layer_norm_forward); WAITS(layer_norm_backward_input); WAITS(layer_norm_backward_params);
    WAITS(softmax_forward); WAITS(softmax_backward);
    WAITS(flash_attention_forward); WAITS(flash_attention_backward_query); WAITS(flash_attention_backward_key);
    PLAIN(upsample_nearest2x_forward); PLAIN(upsample_nearest2x_backward);
    PLAIN(concat_channels); PLAIN(split_channels); WAITS(transpose);
    PLAIN(add_row_bias); WAITS(sum_rows); PLAIN(sum_rows_finish); PLAIN(add_channel_bias); PLAIN(add_channel_biases); WAITS(channel_bias_grad);
    PLAIN(add_channel_bias_residual); PLAIN(add_row_bias_residual);
    PLAIN(im2col); PLAIN(col2im); PLAIN(timestep_embedding); PLAIN(timestep_embedding_from_device);
    PLAIN(cast_to_bf16); PLAIN(cast_from_bf16); PLAIN(im2col_bf16);
    WAITS(mse_partial); WAITS(mse_finish); PLAIN(mse_backward); PLAIN(adam_step);
    return true;
}();
} // namespace

// 0 when launched, -1 for an unknown kernel name
extern "C" int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz, void** params) {
    auto it = kernels().find(name);
    if (it == kernels().end()) return -1;
    it->second(dim3{gx, gy, gz}, dim3{bx, by, bz}, params);
    return 0;
}
