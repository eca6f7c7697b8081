// diffusers' get_timestep_embedding (embeddings.py), in float32 as torch computes it:
// half = dim / 2, freq_i = exp(-ln(max_period) * i / (half - freq_shift)), emb = [sin(t freq) | cos(t freq)],
// halves swapped when flip_sin_to_cos, a zero column appended when dim is odd.
#include "common.cuh"

// out[n, dim]; negLogMaxPeriod = -ln(max_period) rounded to float, as torch multiplies it into a float tensor
extern "C" __global__ void timestep_embedding(float* out, const float* timesteps, int n, int dim, int flipSinToCos,
                                              float freqShift, float negLogMaxPeriod) {
    int half = dim / 2;
    i64 total = (i64) n * dim;
    GRID_STRIDE_LOOP(i, total) {
        int j = (int) (i % dim);
        int sample = (int) (i / dim);
        if (j >= 2 * half) { out[i] = 0.0f; continue; }
        int k = j < half ? j : j - half;
        float exponent = (negLogMaxPeriod * (float) k) / ((float) half - freqShift);
        float arg = timesteps[sample] * expf(exponent);
        bool firstHalf = j < half;
        bool useSin = flipSinToCos ? !firstHalf : firstHalf;
        out[i] = useSin ? sinf(arg) : cosf(arg);
    }
}
