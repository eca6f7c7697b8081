// diffusers' get_timestep_embedding (embeddings.py), with torch's float32 rounding at each step:
// half = dim / 2, freq_i = exp(-ln(max_period) * i / (half - freq_shift)), emb = [sin(t freq) | cos(t freq)],
// halves swapped when flip_sin_to_cos, a zero column appended when dim is odd.
#include "common.cuh"

// element i of out[n, dim] for a sample at timestep t
__device__ __forceinline__ float timestep_embedding_value(i64 i, float t, int dim, int flipSinToCos, float freqShift,
                                                          float negLogMaxPeriod) {
    int half = dim / 2;
    int j = (int) (i % dim);
    if (j >= 2 * half) return 0.0f;
    int k = j < half ? j : j - half;
    float exponent = __fdiv_rn(__fmul_rn(negLogMaxPeriod, (float) k), __fsub_rn((float) half, freqShift));
    float freq = (float) exp((double) exponent);       // double, rounded once: as the cpu reference
    float arg = __fmul_rn(t, freq);
    bool firstHalf = j < half;
    bool useSin = flipSinToCos ? !firstHalf : firstHalf;
    // arguments reach ~1000: sin/cos in double, so one float ulp of error is not amplified
    return (float) (useSin ? sin((double) arg) : cos((double) arg));
}

// out[n, dim] for n <= 4 timesteps t0..t3, passed as arguments (no upload, so no wait for the stream); larger
// batches launch once per 4 samples. negLogMaxPeriod = -ln(max_period) rounded to float, as torch multiplies it
// into a float tensor
extern "C" __global__ void timestep_embedding(float* out, int n, int dim, int flipSinToCos, float freqShift,
                                              float negLogMaxPeriod, float t0, float t1, float t2, float t3) {
    i64 total = (i64) n * dim;
    GRID_STRIDE_LOOP(i, total) {
        int sample = (int) (i / dim);
        float t = sample == 0 ? t0 : sample == 1 ? t1 : sample == 2 ? t2 : t3;
        out[i] = timestep_embedding_value(i, t, dim, flipSinToCos, freqShift, negLogMaxPeriod);
    }
}

// the same for timesteps[n] in device memory: what a CUDA graph replays with new timesteps (a kernel argument
// would be frozen into the graph), any n in one launch
extern "C" __global__ void timestep_embedding_from_device(float* out, const float* timesteps, int n, int dim,
                                                          int flipSinToCos, float freqShift, float negLogMaxPeriod) {
    i64 total = (i64) n * dim;
    GRID_STRIDE_LOOP(i, total) {
        out[i] = timestep_embedding_value(i, timesteps[i / dim], dim, flipSinToCos, freqShift, negLogMaxPeriod);
    }
}
