package esdnative.bench;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

/**
 * Seeded noise in place of downloaded weights, so full-size configurations can be timed anywhere: each tensor
 * uniform in ±1/√fan_in (PyTorch's default bound for Linear and Conv2d; fan_in = product of all dims but the first),
 * 1-D tensors (biases, norm scales) in ±0.02. The values only need to be finite and ordinary (no denormals).
 */
final class RandomWeights {
    /** host floats per copy: bounds the temporary host memory for multi-GB models */
    private static final int CHUNK = 1 << 20;

    private RandomWeights() {}

    static void fill(Backend be, Weights weights, long seed) {
        Rng rng = new Rng(seed);
        float[] host = new float[CHUNK];
        for (Tensor t : weights.asMap().values()) {
            double bound = t.rank() >= 2 ? 1 / Math.sqrt(t.size() / (double) t.dim(0)) : 0.02;
            for (long done = 0; done < t.size(); done += CHUNK) {
                int len = (int) Math.min(CHUNK, t.size() - done);
                for (int i = 0; i < len; i++) host[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
                be.copyFromHost(t.view(done, len), host, 0);
            }
        }
    }
}
