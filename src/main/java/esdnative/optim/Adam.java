package esdnative.optim;

import esdnative.backend.Backend;
import esdnative.tensor.Tensor;

/**
 * torch.optim.Adam over one flat parameter buffer (bias-corrected, L2 weight decay as torch adds it to the
 * gradient). The moments live in two flat buffers of the same size; the step count drives the bias corrections.
 */
public final class Adam {
    /** Hyper-parameters; ESD uses lr 1e-5, betas (0.9, 0.999), eps 1e-8, no weight decay. */
    public record Config(float lr, float beta1, float beta2, float eps, float weightDecay) {
        public static Config torchDefaults(float lr) { return new Config(lr, 0.9f, 0.999f, 1e-8f, 0f); }
    }

    private final Config config;
    private final Tensor m;
    private final Tensor v;
    private int step;

    public Adam(Backend be, int size, Config config) {
        this.config = config;
        this.m = be.zeros(size);
        this.v = be.zeros(size);
    }

    /** One update of params from grads (both flat, of this optimiser's size). */
    public void step(Backend be, Tensor params, Tensor grads) {
        step++;
        be.adamStep(params, grads, m, v, m.size(), step, config.lr(), config.beta1(), config.beta2(), config.eps(),
                config.weightDecay());
    }

    public Config config() { return config; }

    /** Updates taken so far. */
    public int stepCount() { return step; }

    public Tensor firstMoment() { return m; }

    public Tensor secondMoment() { return v; }

    /** Continues from a checkpoint: the step count and both moments. */
    public void restore(Backend be, int stepCount, float[] firstMoment, float[] secondMoment) {
        if (firstMoment.length != m.size() || secondMoment.length != v.size()) {
            throw new IllegalArgumentException("Adam state of " + firstMoment.length + " values for " + m.size() + " parameters");
        }
        be.copyFromHost(m, firstMoment, 0);
        be.copyFromHost(v, secondMoment, 0);
        this.step = stepCount;
    }
}
