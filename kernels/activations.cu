// activations and their backward passes, elementwise. backward kernels accumulate into dIn.
// https://pytorch.org/docs/stable/generated/torch.nn.SiLU.html, .../torch.nn.GELU.html (approximate='none')
#include "common.cuh"

#define INV_SQRT_2PI 0.39894228040143267794f // 1/sqrt(2*pi)
#define QUICK_GELU_ALPHA 1.702f

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// gelu(x) = x * Phi(x); normcdff stays accurate in the lower tail, where 1 + erf(x / sqrt 2) cancels
__device__ __forceinline__ float gelu_value(float x) { return x * normcdff(x); }

// d gelu / dx = Phi(x) + x * phi(x)
__device__ __forceinline__ float gelu_slope(float x) {
    return normcdff(x) + x * INV_SQRT_2PI * expf(-0.5f * x * x);
}

// silu(x) = x * sigmoid(x)
extern "C" __global__ void silu_forward(float* out, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) { float x = in[i]; out[i] = x * sigmoid(x); }
}

// d silu / dx = s * (1 + x * (1 - s))
extern "C" __global__ void silu_backward(float* dIn, const float* dOut, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        float x = in[i];
        float s = sigmoid(x);
        dIn[i] += dOut[i] * s * (1.0f + x * (1.0f - s));
    }
}

extern "C" __global__ void gelu_forward(float* out, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = gelu_value(in[i]);
}

extern "C" __global__ void gelu_backward(float* dIn, const float* dOut, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) dIn[i] += dOut[i] * gelu_slope(in[i]);
}

// clip's quick gelu: x * sigmoid(1.702 x)
extern "C" __global__ void quick_gelu_forward(float* out, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) { float x = in[i]; out[i] = x * sigmoid(QUICK_GELU_ALPHA * x); }
}

// d/dx = s + 1.702 x s (1 - s), s = sigmoid(1.702 x)
extern "C" __global__ void quick_gelu_backward(float* dIn, const float* dOut, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) {
        float x = in[i];
        float s = sigmoid(QUICK_GELU_ALPHA * x);
        dIn[i] += dOut[i] * (s + QUICK_GELU_ALPHA * x * s * (1.0f - s));
    }
}

// diffusers GEGLU after its projection: in[rows, 2*cols] = [h | gate] -> out[rows, cols] = h * gelu(gate).
// bias [2*cols] (may be null): the projection's bias, added here to h and gate as they are read, so that the
// projection's output needs no bias pass of its own
extern "C" __global__ void geglu_forward(float* out, const float* in, const float* bias, int rows, int cols) {
    i64 n = (i64) rows * cols;
    GRID_STRIDE_LOOP(i, n) {
        i64 r = i / cols, c = i % cols;
        const float* row = in + r * 2 * cols;
        float h = row[c], gate = row[cols + c];
        if (bias) { h += bias[c]; gate += bias[cols + c]; }
        out[i] = h * gelu_value(gate);
    }
}

// dh += dOut * gelu(gate); dgate += dOut * h * gelu'(gate) (h and gate with the bias, as the forward took them)
extern "C" __global__ void geglu_backward(float* dIn, const float* dOut, const float* in, const float* bias, int rows,
                                          int cols) {
    i64 n = (i64) rows * cols;
    GRID_STRIDE_LOOP(i, n) {
        i64 r = i / cols, c = i % cols;
        const float* row = in + r * 2 * cols;
        float* dRow = dIn + r * 2 * cols;
        float h = row[c], gate = row[cols + c], g = dOut[i];
        if (bias) { h += bias[c]; gate += bias[cols + c]; }
        dRow[c] += g * gelu_value(gate);
        dRow[cols + c] += g * h * gelu_slope(gate);
    }
}
