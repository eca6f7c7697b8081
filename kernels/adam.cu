// one torch.optim.Adam step over a flat buffer (torch 1.13 _single_tensor_adam, no amsgrad):
// g = grad + wd * param; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// param -= stepSize * m / (sqrt(v) / bc2Sqrt + eps), stepSize = lr / (1 - b1^t), bc2Sqrt = sqrt(1 - b2^t).
// the bias corrections are computed on the host in double and rounded to float, as torch's scalars are.
// https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
#include "common.cuh"

extern "C" __global__ void adam_step(float* param, const float* grad, float* m, float* v, i64 n,
                                     float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                                     float eps, float weightDecay, float stepSize, float bc2Sqrt) {
    GRID_STRIDE_LOOP(i, n) {
        float p = param[i];
        float g = grad[i];
        if (weightDecay != 0.0f) g += weightDecay * p;
        float mi = beta1 * m[i] + oneMinusBeta1 * g;
        float vi = beta2 * v[i] + oneMinusBeta2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - stepSize * (mi / (sqrtf(vi) / bc2Sqrt + eps));
    }
}
