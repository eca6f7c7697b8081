// torch.nn.GroupNorm over in[n, c, hw] (biased variance), forward and backward.
// https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html
// one block per (sample, group): the group's (c / groups) * hw elements are contiguous in memory.
// statistics and gradient sums accumulate in double (as the cpu reference does); elements stay float.
#include "common.cuh"

extern "C" __global__ void group_norm_forward(float* out, float* mean, float* rstd, const float* in,
                                              const float* gamma, const float* beta,
                                              int c, int hw, int groups, float eps) {
    int sampleGroup = blockIdx.x;               // ni * groups + g
    int g = sampleGroup % groups;
    int channelsPerGroup = c / groups;
    i64 count = (i64) channelsPerGroup * hw;
    const float* x = in + (i64) sampleGroup * count;
    float* y = out + (i64) sampleGroup * count;

    // two passes: mean, then the mean of squared deviations
    double sum = 0.0;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) sum += x[i];
    double md = block_sum_double(sum) / (double) count;
    double squares = 0.0;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) { double d = x[i] - md; squares += d * d; }
    double rd = 1.0 / sqrt(block_sum_double(squares) / (double) count + (double) eps);
    if (threadIdx.x == 0) {                      // saved for backward; may be null at inference
        if (mean) mean[sampleGroup] = (float) md;
        if (rstd) rstd[sampleGroup] = (float) rd;
    }

    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * channelsPerGroup + (int) (i / hw);
        y[i] = (float) ((x[i] - md) * rd * gamma[ch] + beta[ch]);
    }
}

// dIn += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dOut * gamma, means over the group
extern "C" __global__ void group_norm_backward_input(float* dIn, const float* dOut, const float* in,
                                                     const float* mean, const float* rstd, const float* gamma,
                                                     int c, int hw, int groups) {
    int sampleGroup = blockIdx.x;
    int g = sampleGroup % groups;
    int channelsPerGroup = c / groups;
    i64 count = (i64) channelsPerGroup * hw;
    i64 base = (i64) sampleGroup * count;
    float m = mean[sampleGroup], r = rstd[sampleGroup];

    double sumDxhat = 0.0, sumDxhatXhat = 0.0;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * channelsPerGroup + (int) (i / hw);
        float dxhat = dOut[base + i] * gamma[ch];
        sumDxhat += dxhat;
        sumDxhatXhat += dxhat * (in[base + i] - m) * r;
    }
    float meanDxhat = (float) (block_sum_double(sumDxhat) / (double) count);
    float meanDxhatXhat = (float) (block_sum_double(sumDxhatXhat) / (double) count);

    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * channelsPerGroup + (int) (i / hw);
        float dxhat = dOut[base + i] * gamma[ch];
        float xhat = (in[base + i] - m) * r;
        dIn[base + i] += r * (dxhat - meanDxhat - xhat * meanDxhatXhat);
    }
}

// dGamma[ch] += sum over samples and pixels of dOut * xhat; dBeta[ch] += sum of dOut. one block per channel.
// either output may be null.
extern "C" __global__ void group_norm_backward_params(float* dGamma, float* dBeta, const float* dOut, const float* in,
                                                      const float* mean, const float* rstd,
                                                      int n, int c, int hw, int groups) {
    int ch = blockIdx.x;
    int g = ch / (c / groups);
    double sumGamma = 0.0, sumBeta = 0.0;
    for (int ni = 0; ni < n; ni++) {
        i64 base = ((i64) ni * c + ch) * hw;
        float m = mean[ni * groups + g], r = rstd[ni * groups + g];
        for (int p = threadIdx.x; p < hw; p += blockDim.x) {
            float dy = dOut[base + p];
            sumGamma += dy * (in[base + p] - m) * r;
            sumBeta += dy;
        }
    }
    sumGamma = block_sum_double(sumGamma);
    sumBeta = block_sum_double(sumBeta);
    if (threadIdx.x == 0) {
        if (dGamma) dGamma[ch] += (float) sumGamma;
        if (dBeta) dBeta[ch] += (float) sumBeta;
    }
}
