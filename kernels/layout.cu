// data movement: nearest 2x upsampling, channel concat/split, batched transpose.
#include "common.cuh"

#define TILE 32
#define TILE_ROWS 8   // blockDim.y of transpose: each thread moves TILE / TILE_ROWS elements

// in[nc, h, w] -> out[nc, 2h, 2w], out[p, y, x] = in[p, y/2, x/2]
extern "C" __global__ void upsample_nearest2x_forward(float* out, const float* in, int nc, int h, int w) {
    i64 n = (i64) nc * 4 * h * w;
    GRID_STRIDE_LOOP(i, n) {
        int x = (int) (i % (2 * w));
        i64 rest = i / (2 * w);
        int y = (int) (rest % (2 * h));
        i64 plane = rest / (2 * h);
        out[i] = in[(plane * h + y / 2) * w + x / 2];
    }
}

// dIn[p, y, x] += sum of the 2x2 block of dOut above it
extern "C" __global__ void upsample_nearest2x_backward(float* dIn, const float* dOut, int nc, int h, int w) {
    i64 n = (i64) nc * h * w;
    GRID_STRIDE_LOOP(i, n) {
        int x = (int) (i % w);
        i64 rest = i / w;
        int y = (int) (rest % h);
        i64 plane = rest / h;
        const float* top = dOut + (plane * 2 * h + 2 * y) * (2 * w) + 2 * x;
        dIn[i] += top[0] + top[1] + top[2 * w] + top[2 * w + 1];
    }
}

// out[n, ca+cb, hw] = [a[n, ca, hw] | b[n, cb, hw]]
extern "C" __global__ void concat_channels(float* out, const float* a, const float* b, int n, int ca, int cb, int hw) {
    int c = ca + cb;
    i64 total = (i64) n * c * hw;
    GRID_STRIDE_LOOP(i, total) {
        int p = (int) (i % hw);
        i64 rest = i / hw;
        int ch = (int) (rest % c);
        i64 sample = rest / c;
        out[i] = ch < ca ? a[(sample * ca + ch) * hw + p] : b[(sample * cb + (ch - ca)) * hw + p];
    }
}

// dA += dOut[:, :ca], dB += dOut[:, ca:]; either may be null
extern "C" __global__ void split_channels(float* dA, float* dB, const float* dOut, int n, int ca, int cb, int hw) {
    int c = ca + cb;
    i64 total = (i64) n * c * hw;
    GRID_STRIDE_LOOP(i, total) {
        int p = (int) (i % hw);
        i64 rest = i / hw;
        int ch = (int) (rest % c);
        i64 sample = rest / c;
        if (ch < ca) {
            if (dA) dA[(sample * ca + ch) * hw + p] += dOut[i];
        } else {
            if (dB) dB[(sample * cb + (ch - ca)) * hw + p] += dOut[i];
        }
    }
}

// out[b, c, r] = in[b, r, c] through a shared 32x32 tile; grid (ceil(cols/32), ceil(rows/32), batch), block (32, 8)
extern "C" __global__ void transpose(float* out, const float* in, int rows, int cols) {
    __shared__ float tile[TILE][TILE + 1];       // +1: no bank conflicts on the transposed read
    i64 matrix = (i64) blockIdx.z * rows * cols;
    int col0 = blockIdx.x * TILE, row0 = blockIdx.y * TILE;
    for (int dy = threadIdx.y; dy < TILE; dy += TILE_ROWS) {
        int r = row0 + dy, c = col0 + threadIdx.x;
        if (r < rows && c < cols) tile[dy][threadIdx.x] = in[matrix + (i64) r * cols + c];
    }
    __syncthreads();
    for (int dy = threadIdx.y; dy < TILE; dy += TILE_ROWS) {
        int c = col0 + dy, r = row0 + threadIdx.x;   // out row c, out column r
        if (r < rows && c < cols) out[matrix + (i64) c * rows + r] = tile[threadIdx.x][dy];
    }
}
