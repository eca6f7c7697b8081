// the kernels on the cpu emulator as a shared library, for running the java CudaBackend without a gpu (its tests
// load this through the foreign function api): emu_launch takes a kernel name, grid, block and a parameter array
// laid out exactly as cuLaunchKernel's kernelParams (one pointer to each argument's value).
#include "emulator.h"

#include "../activations.cu"
#include "../adam.cu"
#include "../arithmetic.cu"
#include "../bias.cu"
#include "../group_norm.cu"
#include "../im2col.cu"
#include "../layer_norm.cu"
#include "../layout.cu"
#include "../mse.cu"
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
void call(void (*kernel)(A...), dim3 grid, dim3 block, void** params, std::index_sequence<I...>) {
    emu::launch(kernel, grid, block, *static_cast<A*>(params[I])...);
}

template <class... A>
void enroll(const char* name, void (*kernel)(A...)) {
    kernels()[name] = [kernel](dim3 grid, dim3 block, void** params) {
        call(kernel, grid, block, params, std::index_sequence_for<A...>{});
    };
}

#define ENROLL(k) enroll(#k, k)

const bool enrolled = [] {
    ENROLL(add); ENROLL(axpy); ENROLL(scale); ENROLL(linear_combination);
    ENROLL(silu_forward); ENROLL(silu_backward); ENROLL(gelu_forward); ENROLL(gelu_backward);
    ENROLL(quick_gelu_forward); ENROLL(quick_gelu_backward); ENROLL(geglu_forward); ENROLL(geglu_backward);
    ENROLL(group_norm_forward); ENROLL(group_norm_backward_input); ENROLL(group_norm_backward_params);
    ENROLL(layer_norm_forward); ENROLL(layer_norm_backward_input); ENROLL(layer_norm_backward_params);
    ENROLL(softmax_forward); ENROLL(softmax_backward);
    ENROLL(upsample_nearest2x_forward); ENROLL(upsample_nearest2x_backward);
    ENROLL(concat_channels); ENROLL(split_channels); ENROLL(transpose);
    ENROLL(add_row_bias); ENROLL(sum_rows); ENROLL(add_channel_bias); ENROLL(channel_bias_grad);
    ENROLL(im2col); ENROLL(col2im); ENROLL(timestep_embedding);
    ENROLL(mse_partial); ENROLL(mse_finish); ENROLL(mse_backward); ENROLL(adam_step);
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
