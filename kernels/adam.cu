// one torch.optim.Adam step over a flat buffer, operation for operation in float32 as torch 1.13's cpu kernels
// (and the cpu backend's AdamStep) do it; the _rn intrinsics keep nvcc from fusing what torch does not fuse:
//   g = fma(p, wd, g); m = fma(g, 1-b1, m*b1); v = v*b2 + ((1-b2)*g)*g;
//   p = p + (negStepSize * m) / (sqrt(v) / bc2Sqrt + eps)
// negStepSize = -lr / (1 - b1^t) and bc2Sqrt = sqrt(1 - b2^t) come from the host, computed in double.
// https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
#include "common.cuh"

extern "C" __global__ void adam_step(float* param, const float* grad, float* m, float* v, i64 n,
                                     float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                                     float eps, float weightDecay, float negStepSize, float bc2Sqrt) {
    GRID_STRIDE_LOOP(i, n) {
        float p = param[i];
        float g = grad[i];
        if (weightDecay != 0.0f) g = fmaf(p, weightDecay, g);
        float mi = fmaf(g, oneMinusBeta1, __fmul_rn(m[i], beta1));
        float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(oneMinusBeta2, g), g));
        float denom = __fadd_rn(__fdiv_rn(sqrtf(vi), bc2Sqrt), eps);
        m[i] = mi;
        v[i] = vi;
        param[i] = __fadd_rn(p, __fdiv_rn(__fmul_rn(negStepSize, mi), denom));
    }
}
