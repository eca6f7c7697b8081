package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.tensor.Tensor;

/**
 * Nearest-neighbour resizing of NCHW tensors to any size, as {@code torch.nn.functional.interpolate(x, size=(oh, ow),
 * mode="nearest")}: output index o reads input index min(floor(o · s), in − 1) with s = in / out in float32, PyTorch's
 * own arithmetic. diffusers' UNet upsamples this way to a skip connection's size when a latent side is not a multiple
 * of 2^(levels − 1) (e.g. 520 px, 65 latents, for SD1.x). It runs on the host, through one copy each way: it is
 * needed only at such sizes, for tensors far smaller than the convolutions around them.
 */
final class NearestResize {
    private NearestResize() {}

    /** The input index each of the {@code out} output positions reads along one axis of {@code in} positions. */
    static int[] sourceIndices(int in, int out) {
        float scale = (float) in / out;
        int[] index = new int[out];
        for (int o = 0; o < out; o++) index[o] = Math.min((int) Math.floor((float) o * scale), in - 1);
        return index;
    }

    /** out[nc, oh, ow] = in[nc, h, w] resized (nc = batch × channels; the sizes are read off the shapes). */
    static void forward(Backend be, Tensor out, Tensor in) {
        int h = in.dim(2), w = in.dim(3), oh = out.dim(2), ow = out.dim(3);
        int[] rows = sourceIndices(h, oh), cols = sourceIndices(w, ow);
        float[] x = be.toHost(in);
        float[] y = new float[(int) out.size()];
        int planes = in.dim(0) * in.dim(1);
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                int src = (p * h + rows[i]) * w, dst = (p * oh + i) * ow;
                for (int j = 0; j < ow; j++) y[dst + j] = x[src + cols[j]];
            }
        }
        be.copyFromHost(out, y, 0);
    }

    /** dIn += the gradient of {@link #forward}: each output's gradient added to the input it read. */
    static void backward(Backend be, Tensor dIn, Tensor dOut) {
        int h = dIn.dim(2), w = dIn.dim(3), oh = dOut.dim(2), ow = dOut.dim(3);
        int[] rows = sourceIndices(h, oh), cols = sourceIndices(w, ow);
        float[] dx = be.toHost(dIn);
        float[] dy = be.toHost(dOut);
        int planes = dIn.dim(0) * dIn.dim(1);
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                int dst = (p * h + rows[i]) * w, src = (p * oh + i) * ow;
                for (int j = 0; j < ow; j++) dx[dst + cols[j]] += dy[src + j];
            }
        }
        be.copyFromHost(dIn, dx, 0);
    }
}
