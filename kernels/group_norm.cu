// torch.nn.GroupNorm over in[n, c, hw] (biased variance), forward and backward, optionally followed by SiLU
// (every ResNet block's GroupNorm → SiLU: one kernel writes silu(y) and y is never stored; the backward recomputes
// y from in and the saved statistics).
// https://pytorch.org/docs/stable/generated/torch.nn.GroupNorm.html
//
// The work is split so that the whole GPU takes part (one block per (sample, group) made 64 blocks at SD 1.4's
// batch 2): every kernel runs one block per piece of one channel plane, grid (n * c, pieces), a plane's hw pixels
// cut into `pieces` equal ranges. A first kernel sums each piece into double partials; a second combines the
// partials of the piece's group (block sums in a fixed order: deterministic) and writes every element.
// Statistics and gradient sums accumulate in double (as the cpu reference does); elements stay float.
#include "common.cuh"

// partial sums per (plane, piece): two doubles each
#define GN_PARTIAL 2

__device__ __forceinline__ float gn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// pixels [first, last) of the piece blockIdx.y of a plane of hw pixels
__device__ __forceinline__ void gn_piece(int hw, int& first, int& last) {
    int per = (hw + gridDim.y - 1) / gridDim.y;
    first = min(hw, (int) blockIdx.y * per);
    last = min(hw, first + per);
}

// forward, first pass: each piece's own mean and sum of squared deviations from it (two passes over the piece,
// which stays in cache): partial[plane, piece] = (mean, m2)
extern "C" __global__ void group_norm_stats(double* partial, const float* in, int hw) {
    i64 plane = blockIdx.x;
    int first, last;
    gn_piece(hw, first, last);
    const float* x = in + plane * hw;
    double sum = 0.0;
    for (int p = first + threadIdx.x; p < last; p += blockDim.x) sum += x[p];
    double total = block_sum_double(sum);     // every thread: block_sum_double waits for the whole block
    double md = last > first ? total / (double) (last - first) : 0.0;
    double squares = 0.0;
    for (int p = first + threadIdx.x; p < last; p += blockDim.x) { double d = x[p] - md; squares += d * d; }
    double m2 = block_sum_double(squares);
    if (threadIdx.x == 0) {
        double* out = partial + (plane * gridDim.y + blockIdx.y) * GN_PARTIAL;
        out[0] = md;
        out[1] = m2;
    }
}

// the group's mean and 1/std from its pieces' (mean, m2) (chan et al.'s combination: the group's m2 is the pieces'
// m2 plus each piece's count × its mean's squared deviation from the group's mean). every thread gets both.
__device__ void gn_group_stats(const double* partial, i64 firstPlane, int channelsPerGroup, int hw, float eps,
                               double& md, double& rd) {
    int pieces = gridDim.y;
    int per = (hw + pieces - 1) / pieces;
    int entries = channelsPerGroup * pieces;
    const double* p = partial + firstPlane * pieces * GN_PARTIAL;
    double count = (double) channelsPerGroup * hw;
    double weighted = 0.0;
    for (int e = threadIdx.x; e < entries; e += blockDim.x) {
        int piece = e % pieces;
        double n = (double) (min(hw, (piece + 1) * per) - min(hw, piece * per));
        weighted += n * p[e * GN_PARTIAL];
    }
    md = block_sum_double(weighted) / count;
    double m2 = 0.0;
    for (int e = threadIdx.x; e < entries; e += blockDim.x) {
        int piece = e % pieces;
        double n = (double) (min(hw, (piece + 1) * per) - min(hw, piece * per));
        double d = p[e * GN_PARTIAL] - md;
        m2 += p[e * GN_PARTIAL + 1] + n * d * d;
    }
    rd = 1.0 / sqrt(block_sum_double(m2) / count + (double) eps);
}

// forward, second pass: out = y = (x - mean) * rstd * gamma + beta, or silu(y) when silu is set; the group's
// mean and rstd saved by its first block (either may be null at inference)
extern "C" __global__ void group_norm_apply(float* out, float* mean, float* rstd, const double* partial,
                                            const float* in, const float* gamma, const float* beta,
                                            int c, int hw, int groups, float eps, int silu) {
    i64 plane = blockIdx.x;                     // ni * c + ch
    int ch = (int) (plane % c);
    int channelsPerGroup = c / groups;
    i64 firstPlane = plane - ch % channelsPerGroup;
    double md, rd;
    gn_group_stats(partial, firstPlane, channelsPerGroup, hw, eps, md, rd);
    if (threadIdx.x == 0 && plane == firstPlane && blockIdx.y == 0) {
        i64 sampleGroup = firstPlane / channelsPerGroup;
        if (mean) mean[sampleGroup] = (float) md;
        if (rstd) rstd[sampleGroup] = (float) rd;
    }
    int first, last;
    gn_piece(hw, first, last);
    const float* x = in + plane * hw;
    float* o = out + plane * hw;
    double g = gamma[ch], b = beta[ch];
    for (int p = first + threadIdx.x; p < last; p += blockDim.x) {
        float y = (float) ((x[p] - md) * rd * g + b);
        o[p] = silu ? y * gn_sigmoid(y) : y;
    }
}

// the gradient reaching y: dOut, or through the silu that followed it dOut * silu'(y), y recomputed from x
__device__ __forceinline__ float gn_dy(float dOut, float x, float m, float r, float g, float b, int silu) {
    if (!silu) return dOut;
    float y = (x - m) * r * g + b;
    float s = gn_sigmoid(y);
    return dOut * s * (1.0f + y * (1.0f - s));
}

// backward, first pass: per (plane, piece) the sums of dy * xhat and of dy (dy: the gradient reaching y):
// partial[plane, piece] = (Σ dy xhat, Σ dy). They are dGamma's and dBeta's terms, and (times gamma) the group
// sums the input gradient needs.
extern "C" __global__ void group_norm_backward_sums(double* partial, const float* dOut, const float* in,
                                                    const float* mean, const float* rstd, const float* gamma,
                                                    const float* beta, int c, int hw, int groups, int silu) {
    i64 plane = blockIdx.x;
    int ch = (int) (plane % c);
    i64 sampleGroup = plane / (c / groups);
    float m = mean[sampleGroup], r = rstd[sampleGroup];
    float g = gamma[ch], b = silu ? beta[ch] : 0.0f;
    int first, last;
    gn_piece(hw, first, last);
    const float* x = in + plane * hw;
    const float* up = dOut + plane * hw;
    double sumDyXhat = 0.0, sumDy = 0.0;
    for (int p = first + threadIdx.x; p < last; p += blockDim.x) {
        float dy = gn_dy(up[p], x[p], m, r, g, b, silu);
        sumDyXhat += dy * (x[p] - m) * r;
        sumDy += dy;
    }
    sumDyXhat = block_sum_double(sumDyXhat);
    sumDy = block_sum_double(sumDy);
    if (threadIdx.x == 0) {
        double* out = partial + (plane * gridDim.y + blockIdx.y) * GN_PARTIAL;
        out[0] = sumDyXhat;
        out[1] = sumDy;
    }
}

// backward, second pass: dIn += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma,
// means over the group (from the partials: Σ dxhat = Σ_ch gamma[ch] Σ dy)
extern "C" __global__ void group_norm_backward_input(float* dIn, const double* partial, const float* dOut,
                                                     const float* in, const float* mean, const float* rstd,
                                                     const float* gamma, const float* beta,
                                                     int c, int hw, int groups, int silu) {
    i64 plane = blockIdx.x;
    int ch = (int) (plane % c);
    int channelsPerGroup = c / groups;
    i64 firstPlane = plane - ch % channelsPerGroup;
    int firstChannel = ch - ch % channelsPerGroup;
    int pieces = gridDim.y;
    const double* p = partial + firstPlane * pieces * GN_PARTIAL;
    double sumDxhatXhat = 0.0, sumDxhat = 0.0;
    for (int e = threadIdx.x; e < channelsPerGroup * pieces; e += blockDim.x) {
        double gm = gamma[firstChannel + e / pieces];
        sumDxhatXhat += gm * p[e * GN_PARTIAL];
        sumDxhat += gm * p[e * GN_PARTIAL + 1];
    }
    double count = (double) channelsPerGroup * hw;
    float meanDxhatXhat = (float) (block_sum_double(sumDxhatXhat) / count);
    float meanDxhat = (float) (block_sum_double(sumDxhat) / count);

    i64 sampleGroup = firstPlane / channelsPerGroup;
    float m = mean[sampleGroup], r = rstd[sampleGroup];
    float g = gamma[ch], b = silu ? beta[ch] : 0.0f;
    int first, last;
    gn_piece(hw, first, last);
    const float* x = in + plane * hw;
    const float* up = dOut + plane * hw;
    float* dx = dIn + plane * hw;
    for (int q = first + threadIdx.x; q < last; q += blockDim.x) {
        float dxhat = gn_dy(up[q], x[q], m, r, g, b, silu) * g;
        float xhat = (x[q] - m) * r;
        dx[q] += r * (dxhat - meanDxhat - xhat * meanDxhatXhat);
    }
}

// dGamma[ch] += Σ over samples and pieces of Σ dy xhat; dBeta[ch] += of Σ dy (in order: deterministic).
// either output may be null.
extern "C" __global__ void group_norm_backward_params(float* dGamma, float* dBeta, const double* partial,
                                                      int n, int c, int pieces) {
    GRID_STRIDE_LOOP(ch, c) {
        double sumGamma = 0.0, sumBeta = 0.0;
        for (int ni = 0; ni < n; ni++) {
            const double* p = partial + ((i64) ni * c + ch) * pieces * GN_PARTIAL;
            for (int piece = 0; piece < pieces; piece++) {
                sumGamma += p[piece * GN_PARTIAL];
                sumBeta += p[piece * GN_PARTIAL + 1];
            }
        }
        if (dGamma) dGamma[ch] += (float) sumGamma;
        if (dBeta) dBeta[ch] += (float) sumBeta;
    }
}
