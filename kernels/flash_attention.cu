// fused multi-head attention (flash attention: https://arxiv.org/abs/2205.14135, backward as in FlashAttention-2),
// float32: no [lq, lk] probability matrix is ever written. q [b, lq, heads*d], k and v [b, lk, heads*d],
// out [b, lq, heads*d]; per (sample, head) and query row i: out_i = Σ_j p_ij v_j, p_ij = exp(s_ij - lse_i),
// s_ij = scale · q_i·k_j, lse_i = log Σ_j exp(s_ij) (keys j > i excluded when causal, as in clip's text encoder).
// forward keeps lse [b, heads, lq]; backward recomputes p from q, k and lse.
//
// work layout: a block's warps each own FA_ROWS rows (query rows forward and in the query backward, key rows in
// the key backward), their vectors spread over the lanes (element e of a row in lane e % 32, register e / 32).
// the other side streams through shared memory in tiles of 32 rows, one per lane for the dot products. a warp
// copies the row it works on into its own scratch row (so every lane reads all of it) and puts the lanes' scores
// into a scratch vector that every lane then reads whole: three warp barriers per row and tile.
#include "common.cuh"

#define FA_MAX_D 160                      // sd 2.x's widest head (sd 1.x: 40, 80, 160; 64 elsewhere)
#define FA_CHUNKS (FA_MAX_D / WARP_SIZE)  // registers per lane for one row of a head
#define FA_TILE WARP_SIZE                 // rows of a streamed tile: one per lane
#define FA_WARPS 4                        // threads per block: FA_WARPS * 32
#define FA_ROWS 8                         // rows each warp owns
#define FA_BLOCK_ROWS (FA_WARPS * FA_ROWS) // rows a block owns: the launch's grid x is ceil(rows / this)
#define FA_STRIDE (FA_MAX_D + 1)          // shared rows padded: lane t reads row t in a bank of its own
// shared memory per block: two tiles of 32 rows and, per warp, two scratch rows and two scratch vectors:
// 4 * (2 * 32 * 161 + 4 * (2 * 161 + 2 * 32)) = 47,392 bytes, inside the 48 KiB a block may have statically

// row `row` of one head (d wide, rows ld apart) into the lane's registers, zeros past d or past `rows`
__device__ __forceinline__ void fa_load_row(float (&r)[FA_CHUNKS], const float* base, i64 row, int rows, int ld,
                                            int d, int lane) {
#pragma unroll
    for (int c = 0; c < FA_CHUNKS; c++) {
        int e = c * WARP_SIZE + lane;
        r[c] = row < rows && e < d ? base[row * ld + e] : 0.0f;
    }
}

// rows [first, first + FA_TILE) of one head into shared memory (zeros past `rows`), by the whole block
__device__ __forceinline__ void fa_load_tile(float* tile, const float* base, int first, int rows, int ld, int d) {
    for (int idx = threadIdx.x; idx < FA_TILE * d; idx += blockDim.x) {
        int t = idx / d, e = idx % d;
        tile[t * FA_STRIDE + e] = first + t < rows ? base[(i64) (first + t) * ld + e] : 0.0f;
    }
}

// a row held in the warp's registers into the warp's scratch row (the caller then waits: __syncwarp)
__device__ __forceinline__ void fa_share_row(float* scratch, const float (&r)[FA_CHUNKS], int d, int lane) {
#pragma unroll
    for (int c = 0; c < FA_CHUNKS; c++) {
        int e = c * WARP_SIZE + lane;
        if (e < d) scratch[e] = r[c];
    }
}

// the scratch row · row `lane` of a tile
__device__ __forceinline__ float fa_dot(const float* row, const float* tile, int d, int lane) {
    const float* t = tile + lane * FA_STRIDE;
    float s = 0.0f;
    for (int e = 0; e < d; e++) s += row[e] * t[e];
    return s;
}

// acc[the lane's elements] += Σ_t weights[t] · tile row t
__device__ __forceinline__ void fa_accumulate(float (&acc)[FA_CHUNKS], const float* weights, const float* tile,
                                              int d, int lane) {
    for (int t = 0; t < FA_TILE; t++) {
        float w = weights[t];
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) {
            int e = c * WARP_SIZE + lane;
            if (e < d) acc[c] += w * tile[t * FA_STRIDE + e];
        }
    }
}

// grid (ceil(lq / FA_BLOCK_ROWS), b * heads), block FA_WARPS * 32. lse may be null (nothing saved).
extern "C" __global__ void flash_attention_forward(float* out, float* lse, const float* q, const float* k,
                                                   const float* v, int heads, int lq, int lk, int d, float scale,
                                                   int causal) {
    __shared__ float keys[FA_TILE * FA_STRIDE];
    __shared__ float values[FA_TILE * FA_STRIDE];
    __shared__ float rowScratch[FA_WARPS][FA_STRIDE];
    __shared__ float scoreScratch[FA_WARPS][FA_TILE];
    int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    int sample = blockIdx.y / heads, head = blockIdx.y % heads, ld = heads * d;
    const float* qh = q + (i64) sample * lq * ld + (i64) head * d;
    const float* kh = k + (i64) sample * lk * ld + (i64) head * d;
    const float* vh = v + (i64) sample * lk * ld + (i64) head * d;
    int firstRow = blockIdx.x * FA_BLOCK_ROWS + warp * FA_ROWS;
    float* row = rowScratch[warp];
    float* scores = scoreScratch[warp];

    float qr[FA_ROWS][FA_CHUNKS], acc[FA_ROWS][FA_CHUNKS], maxScore[FA_ROWS], sum[FA_ROWS];
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        fa_load_row(qr[r], qh, firstRow + r, lq, ld, d, lane);
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) acc[r][c] = 0.0f;
        maxScore[r] = -INFINITY;
        sum[r] = 0.0f;
    }
    // causal: no row of this block sees keys past its last row
    int keyEnd = causal ? min(lk, (int) (blockIdx.x + 1) * FA_BLOCK_ROWS) : lk;
    for (int first = 0; first < keyEnd; first += FA_TILE) {
        __syncthreads();                         // the previous tile is no longer read
        fa_load_tile(keys, kh, first, lk, ld, d);
        fa_load_tile(values, vh, first, lk, ld, d);
        __syncthreads();
        int key = first + lane;
#pragma unroll
        for (int r = 0; r < FA_ROWS; r++) {
            int i = firstRow + r;
            if (i >= lq) break;                  // the same for the whole warp
            fa_share_row(row, qr[r], d, lane);
            __syncwarp();
            bool valid = key < lk && (!causal || key <= i);
            scores[lane] = valid ? scale * fa_dot(row, keys, d, lane) : -INFINITY;
            __syncwarp();
            float newMax = maxScore[r];
            for (int t = 0; t < FA_TILE; t++) newMax = fmaxf(newMax, scores[t]);
            if (newMax != -INFINITY) {           // else every key of this tile is masked for this row
                float rescale = expf(maxScore[r] - newMax);    // 0 on the first tile (max was -inf)
                float tileSum = 0.0f;
#pragma unroll
                for (int c = 0; c < FA_CHUNKS; c++) acc[r][c] *= rescale;
                for (int t = 0; t < FA_TILE; t++) {
                    float p = expf(scores[t] - newMax);      // 0 for masked keys (-inf)
                    tileSum += p;
#pragma unroll
                    for (int c = 0; c < FA_CHUNKS; c++) {
                        int e = c * WARP_SIZE + lane;
                        if (e < d) acc[r][c] += p * values[t * FA_STRIDE + e];
                    }
                }
                sum[r] = sum[r] * rescale + tileSum;
                maxScore[r] = newMax;
            }
            __syncwarp();                        // scratch is rewritten for the next row
        }
    }
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        int i = firstRow + r;
        if (i >= lq) break;
        float* o = out + ((i64) sample * lq + i) * ld + (i64) head * d;
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) {
            int e = c * WARP_SIZE + lane;
            if (e < d) o[e] = acc[r][c] / sum[r];
        }
        if (lse != nullptr && lane == 0) lse[((i64) sample * heads + head) * lq + i] = maxScore[r] + logf(sum[r]);
    }
}

// the query side of the backward, non-causal. per query row i: delta_i = Σ_j p_ij dp_ij (dp_ij = dOut_i·v_j), the
// row sum of softmax's backward, into delta [b, heads, lq]; then, when dq is not null,
// dq_i += scale · Σ_j p_ij (dp_ij - delta_i) k_j (dq = ... when accumulate is 0). two passes over the keys. grid
// and block as the forward's.
extern "C" __global__ void flash_attention_backward_query(float* dq, float* delta, const float* dOut,
                                                          const float* q, const float* k, const float* v,
                                                          const float* lse, int heads, int lq, int lk, int d,
                                                          float scale, int accumulate) {
    __shared__ float keys[FA_TILE * FA_STRIDE];
    __shared__ float values[FA_TILE * FA_STRIDE];
    __shared__ float rowScratch[FA_WARPS][2][FA_STRIDE];    // the row's q and dOut
    __shared__ float scoreScratch[FA_WARPS][FA_TILE];
    int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    int sample = blockIdx.y / heads, head = blockIdx.y % heads, ld = heads * d;
    i64 qOffset = (i64) sample * lq * ld + (i64) head * d, kOffset = (i64) sample * lk * ld + (i64) head * d;
    const float* stats = lse + ((i64) sample * heads + head) * lq;
    int firstRow = blockIdx.x * FA_BLOCK_ROWS + warp * FA_ROWS;
    float* qRow = rowScratch[warp][0];
    float* dyRow = rowScratch[warp][1];
    float* weights = scoreScratch[warp];

    float qr[FA_ROWS][FA_CHUNKS], dyr[FA_ROWS][FA_CHUNKS], acc[FA_ROWS][FA_CHUNKS], rowLse[FA_ROWS];
    double rowDelta[FA_ROWS];
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        fa_load_row(qr[r], q + qOffset, firstRow + r, lq, ld, d, lane);
        fa_load_row(dyr[r], dOut + qOffset, firstRow + r, lq, ld, d, lane);
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) acc[r][c] = 0.0f;
        rowLse[r] = firstRow + r < lq ? stats[firstRow + r] : 0.0f;
        rowDelta[r] = 0.0;
    }
    for (int pass = 0; pass < (dq != nullptr ? 2 : 1); pass++) {
        for (int first = 0; first < lk; first += FA_TILE) {
            __syncthreads();
            fa_load_tile(keys, k + kOffset, first, lk, ld, d);
            fa_load_tile(values, v + kOffset, first, lk, ld, d);
            __syncthreads();
            bool valid = first + lane < lk;
#pragma unroll
            for (int r = 0; r < FA_ROWS; r++) {
                if (firstRow + r >= lq) break;
                fa_share_row(qRow, qr[r], d, lane);
                fa_share_row(dyRow, dyr[r], d, lane);
                __syncwarp();
                float p = valid ? expf(scale * fa_dot(qRow, keys, d, lane) - rowLse[r]) : 0.0f;
                float dp = fa_dot(dyRow, values, d, lane);
                // pass 0: the terms of delta; pass 1: dS = p (dp - delta), the weights of k's rows
                weights[lane] = pass == 0 ? p * dp : p * (dp - (float) rowDelta[r]);
                __syncwarp();
                if (pass == 0) {
                    double tileSum = 0.0;
                    for (int t = 0; t < FA_TILE; t++) tileSum += weights[t];
                    rowDelta[r] += tileSum;
                } else {
                    fa_accumulate(acc[r], weights, keys, d, lane);
                }
                __syncwarp();
            }
        }
    }
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        int i = firstRow + r;
        if (i >= lq) break;
        if (lane == 0) delta[((i64) sample * heads + head) * lq + i] = (float) rowDelta[r];
        if (dq == nullptr) continue;
        float* g = dq + qOffset + (i64) i * ld;
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) {
            int e = c * WARP_SIZE + lane;
            if (e < d) g[e] = (accumulate ? g[e] : 0.0f) + scale * acc[r][c];
        }
    }
}

// the key side of the backward, non-causal, after flash_attention_backward_query's delta. per key row j:
// dv_j += Σ_i p_ij dOut_i; dk_j += scale · Σ_i p_ij (dp_ij - delta_i) q_i (either may be null; = instead of +=
// where accumulateDk, accumulateDv is 0). grid (ceil(lk / FA_BLOCK_ROWS), b * heads), block FA_WARPS * 32.
extern "C" __global__ void flash_attention_backward_key(float* dk, float* dv, const float* dOut, const float* q,
                                                        const float* k, const float* v, const float* lse,
                                                        const float* delta, int heads, int lq, int lk, int d,
                                                        float scale, int accumulateDk, int accumulateDv) {
    __shared__ float queries[FA_TILE * FA_STRIDE];
    __shared__ float grads[FA_TILE * FA_STRIDE];           // dOut's rows
    __shared__ float rowScratch[FA_WARPS][2][FA_STRIDE];    // the row's k and v
    __shared__ float weightScratch[FA_WARPS][2][FA_TILE];   // p and dS of the tile's queries
    int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    int sample = blockIdx.y / heads, head = blockIdx.y % heads, ld = heads * d;
    i64 qOffset = (i64) sample * lq * ld + (i64) head * d, kOffset = (i64) sample * lk * ld + (i64) head * d;
    i64 statsOffset = ((i64) sample * heads + head) * lq;
    int firstRow = blockIdx.x * FA_BLOCK_ROWS + warp * FA_ROWS;
    float* kRow = rowScratch[warp][0];
    float* vRow = rowScratch[warp][1];
    float* probs = weightScratch[warp][0];
    float* scoreGrads = weightScratch[warp][1];

    float kr[FA_ROWS][FA_CHUNKS], vr[FA_ROWS][FA_CHUNKS], dkAcc[FA_ROWS][FA_CHUNKS], dvAcc[FA_ROWS][FA_CHUNKS];
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        fa_load_row(kr[r], k + kOffset, firstRow + r, lk, ld, d, lane);
        fa_load_row(vr[r], v + kOffset, firstRow + r, lk, ld, d, lane);
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) dkAcc[r][c] = dvAcc[r][c] = 0.0f;
    }
    for (int first = 0; first < lq; first += FA_TILE) {
        __syncthreads();
        fa_load_tile(queries, q + qOffset, first, lq, ld, d);
        fa_load_tile(grads, dOut + qOffset, first, lq, ld, d);
        __syncthreads();
        int query = first + lane;
        bool valid = query < lq;
        float queryLse = valid ? lse[statsOffset + query] : 0.0f;
        float queryDelta = valid ? delta[statsOffset + query] : 0.0f;
#pragma unroll
        for (int r = 0; r < FA_ROWS; r++) {
            if (firstRow + r >= lk) break;
            fa_share_row(kRow, kr[r], d, lane);
            fa_share_row(vRow, vr[r], d, lane);
            __syncwarp();
            float p = valid ? expf(scale * fa_dot(kRow, queries, d, lane) - queryLse) : 0.0f;
            probs[lane] = p;
            scoreGrads[lane] = p * (fa_dot(vRow, grads, d, lane) - queryDelta);
            __syncwarp();
            if (dv != nullptr) fa_accumulate(dvAcc[r], probs, grads, d, lane);
            if (dk != nullptr) fa_accumulate(dkAcc[r], scoreGrads, queries, d, lane);
            __syncwarp();
        }
    }
#pragma unroll
    for (int r = 0; r < FA_ROWS; r++) {
        int j = firstRow + r;
        if (j >= lk) break;
#pragma unroll
        for (int c = 0; c < FA_CHUNKS; c++) {
            int e = c * WARP_SIZE + lane;
            if (e >= d) continue;
            i64 at = kOffset + (i64) j * ld + e;
            if (dv != nullptr) dv[at] = (accumulateDv ? dv[at] : 0.0f) + dvAcc[r][c];
            if (dk != nullptr) dk[at] = (accumulateDk ? dk[at] : 0.0f) + scale * dkAcc[r][c];
        }
    }
}
