// convolution as im2col + gemm. per sample, col[(ci*r + ki)*s + kj, oy*ow + ox] holds the input pixel that
// kernel tap (ki, kj) of channel ci sees at output (oy, ox), or 0 in the zero padding.
#include "im2col.cuh"

// in[n, c, h, w] -> col[n, c*r*s, oh*ow]
extern "C" __global__ void im2col(float* col, const float* in, int n, int c, int h, int w, int r, int s,
                                  int stride, int pad, int oh, int ow) {
    i64 total = (i64) n * c * r * s * oh * ow;
    GRID_STRIDE_LOOP(i, total) {
        i64 from = im2col_source(i, h, w, r, s, stride, pad, oh, ow);
        col[i] = from >= 0 ? in[from] : 0.0f;
    }
}

// the adjoint of im2col: dIn[n, c, h, w] += the sum of every col entry that im2col copied from that pixel.
// a gather per input pixel (no atomics), so the result is deterministic.
extern "C" __global__ void col2im(float* dIn, const float* col, int n, int c, int h, int w, int r, int s,
                                  int stride, int pad, int oh, int ow) {
    i64 total = (i64) n * c * h * w;
    i64 ohw = (i64) oh * ow;
    GRID_STRIDE_LOOP(i, total) {
        int x = (int) (i % w);
        i64 rest = i / w;
        int y = (int) (rest % h);
        i64 plane = rest / h;                      // ni * c + ci; col rows of this plane start at plane * r * s
        float sum = 0.0f;
        for (int ki = 0; ki < r; ki++) {
            int yy = y + pad - ki;                 // = oy * stride
            if (yy < 0 || yy % stride != 0) continue;
            int oy = yy / stride;
            if (oy >= oh) continue;
            for (int kj = 0; kj < s; kj++) {
                int xx = x + pad - kj;
                if (xx < 0 || xx % stride != 0) continue;
                int ox = xx / stride;
                if (ox >= ow) continue;
                sum += col[((plane * r + ki) * s + kj) * ohw + (i64) oy * ow + ox];
            }
        }
        dIn[i] += sum;
    }
}
