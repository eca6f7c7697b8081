package esdnative.backend.cpu;

/**
 * diffusers' get_timestep_embedding (diffusers/models/embeddings.py), with torch's float32 rounding at each
 * step: exponent_i = -ln(maxPeriod) · i / (half - shift), freq_i = exp(exponent_i), arg = t · freq_i, then
 * [sin(arg) | cos(arg)] (halves swapped when flipSinToCos), a zero column appended when dim is odd.
 */
final class TimestepEmbedding {
    private TimestepEmbedding() {}

    /** out[n, dim] as a host array. */
    static float[] compute(float[] timesteps, int dim, boolean flipSinToCos, float freqShift, float maxPeriod) {
        int half = dim / 2;
        float negLogPeriod = (float) -Math.log(maxPeriod);
        float divisor = half - freqShift;
        float[] freq = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (negLogPeriod * i) / divisor;
            freq[i] = (float) Math.exp(exponent);
        }
        float[] out = new float[timesteps.length * dim];
        for (int n = 0; n < timesteps.length; n++) {
            int row = n * dim;
            int sinAt = flipSinToCos ? half : 0, cosAt = flipSinToCos ? 0 : half;
            for (int i = 0; i < half; i++) {
                float arg = timesteps[n] * freq[i];
                out[row + sinAt + i] = (float) Math.sin(arg);
                out[row + cosAt + i] = (float) Math.cos(arg);
            }
        }
        return out;
    }
}
