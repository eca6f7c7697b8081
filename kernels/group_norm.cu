// torch.nn.GroupNorm over in[n, c, hw] (biased variance), forward and backward.
// https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html
// one block per (sample, group): the group's (c / groups) * hw elements are contiguous in memory.
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
    float sum = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) sum += x[i];
    float m = block_sum(sum) / (float) count;
    float squares = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) { float d = x[i] - m; squares += d * d; }
    float var = block_sum(squares) / (float) count;
    float r = 1.0f / sqrtf(var + eps);
    if (threadIdx.x == 0) { mean[sampleGroup] = m; rstd[sampleGroup] = r; }

    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * channelsPerGroup + (int) (i / hw);
        y[i] = (x[i] - m) * r * gamma[ch] + beta[ch];
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

    float sumDxhat = 0.0f, sumDxhatXhat = 0.0f;
    for (i64 i = threadIdx.x; i < count; i += blockDim.x) {
        int ch = g * channelsPerGroup + (int) (i / hw);
        float dxhat = dOut[base + i] * gamma[ch];
        sumDxhat += dxhat;
        sumDxhatXhat += dxhat * (in[base + i] - m) * r;
    }
    float meanDxhat = block_sum(sumDxhat) / (float) count;
    float meanDxhatXhat = block_sum(sumDxhatXhat) / (float) count;

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
    float sumGamma = 0.0f, sumBeta = 0.0f;
    for (int ni = 0; ni < n; ni++) {
        i64 base = ((i64) ni * c + ch) * hw;
        float m = mean[ni * groups + g], r = rstd[ni * groups + g];
        for (int p = threadIdx.x; p < hw; p += blockDim.x) {
            float dy = dOut[base + p];
            sumGamma += dy * (in[base + p] - m) * r;
            sumBeta += dy;
        }
    }
    sumGamma = block_sum(sumGamma);
    sumBeta = block_sum(sumBeta);
    if (threadIdx.x == 0) {
        if (dGamma) dGamma[ch] += sumGamma;
        if (dBeta) dBeta[ch] += sumBeta;
    }
}
