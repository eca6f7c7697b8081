// The index arithmetic of im2col, shared by the float32 (im2col.cu) and bf16 (bf16.cu) kernels.
#pragma once
#include "common.cuh"

// col[n, c*r*s, oh*ow] from in[n, c, h, w]: the index in `in` of the pixel that column element i holds, or -1
// where kernel tap (ki, kj) falls in the zero padding. Per sample, col[(ci*r + ki)*s + kj, oy*ow + ox].
__device__ __forceinline__ i64 im2col_source(i64 i, int h, int w, int r, int s, int stride, int pad, int oh, int ow) {
    int ox = (int) (i % ow);
    i64 rest = i / ow;
    int oy = (int) (rest % oh); rest /= oh;
    int kj = (int) (rest % s); rest /= s;
    int ki = (int) (rest % r); rest /= r;
    i64 plane = rest;                          // ni * c + ci
    int y = oy * stride - pad + ki, x = ox * stride - pad + kj;
    return (y >= 0 && y < h && x >= 0 && x < w) ? (plane * h + y) * w + x : -1;
}
