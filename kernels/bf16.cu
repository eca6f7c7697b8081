// bfloat16 for the GEMMs of --precision bf16: cuBLAS multiplies bf16 operands (CUDA_R_16BF) with float32
// accumulation, so float32 operands are rounded first; frozen weights are stored rounded. A bf16 value is the top
// 16 bits of a float32 (sign, 8 exponent bits, 7 mantissa bits); it is handled as its raw bits (unsigned short),
// with the rounding written out, so that the cpu emulator runs the same code as the gpu.
#include "im2col.cuh"

typedef unsigned short bf16_bits;

// float32 -> bf16, round to nearest, ties to even (as torch's c10::BFloat16 and cuda's __float2bfloat16_rn):
// adding 0x7fff plus the lowest kept bit carries into the kept bits exactly when the dropped half is above one
// half, or equal to it with an odd kept part. infinities stay infinite, finite values past the largest bf16 become
// infinite, and a nan stays a (quiet) nan.
__device__ __forceinline__ bf16_bits float_to_bf16(float x) {
    unsigned bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (bf16_bits) ((bits >> 16) | 0x40u);
    return (bf16_bits) ((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// bf16 -> float32: exact
__device__ __forceinline__ float bf16_to_float(bf16_bits b) {
    return __uint_as_float((unsigned) b << 16);
}

// out[i] = bf16(in[i]) over n elements
extern "C" __global__ void cast_to_bf16(bf16_bits* out, const float* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = float_to_bf16(in[i]);
}

// out[i] = in[i] widened to float32 over n elements (reading frozen bf16 weights back)
extern "C" __global__ void cast_from_bf16(float* out, const bf16_bits* in, i64 n) {
    GRID_STRIDE_LOOP(i, n) out[i] = bf16_to_float(in[i]);
}

// im2col (im2col.cu) writing bf16 columns: in[n, c, h, w] -> col[n, c*r*s, oh*ow], each value rounded; the
// convolution's GEMM reads them as its bf16 operand, with half the workspace and no separate cast pass
extern "C" __global__ void im2col_bf16(bf16_bits* col, const float* in, int n, int c, int h, int w, int r, int s,
                                       int stride, int pad, int oh, int ow) {
    i64 total = (i64) n * c * r * s * oh * ow;
    GRID_STRIDE_LOOP(i, total) {
        i64 from = im2col_source(i, h, w, r, s, stride, pad, oh, ow);
        col[i] = from >= 0 ? float_to_bf16(in[from]) : (bf16_bits) 0;
    }
}
