package esdnative.optim;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * torch.optim.Adam over a parameter set's buffers (bias-corrected, L2 weight decay as torch adds it to the
 * gradient), one pass per buffer. The moments live in buffers of the same sizes; the step count drives the bias
 * corrections.
 */
public final class Adam {
    /** Hyper-parameters; ESD uses lr 1e-5, betas (0.9, 0.999), eps 1e-8, no weight decay. */
    public record Config(float lr, float beta1, float beta2, float eps, float weightDecay) {
        public static Config torchDefaults(float lr) { return new Config(lr, 0.9f, 0.999f, 1e-8f, 0f); }
    }

    private final Config config;
    private final List<Tensor> m = new ArrayList<>();   // one per parameter buffer
    private final List<Tensor> v = new ArrayList<>();
    private int step;

    /** An optimiser for {@code params} (laid over buffers of their own, as {@link Weights#allocate} makes them). */
    public Adam(Backend be, Weights params, Config config) {
        this.config = config;
        for (Tensor buffer : params.buffers()) {
            m.add(be.zeros(Math.toIntExact(buffer.size())));
            v.add(be.zeros(Math.toIntExact(buffer.size())));
        }
    }

    /** One update of params from grads (weights of the same layout as those this optimiser was made for). */
    public void step(Backend be, Weights params, Weights grads) {
        List<Tensor> p = params.buffers(), g = grads.buffers();
        if (p.size() != m.size() || g.size() != m.size()) {
            throw new IllegalArgumentException("Adam over " + m.size() + " buffers got parameters in " + p.size()
                    + " and gradients in " + g.size());
        }
        step++;
        for (int i = 0; i < m.size(); i++) {
            be.adamStep(p.get(i), g.get(i), m.get(i), v.get(i), m.get(i).size(), step, config.lr(), config.beta1(),
                    config.beta2(), config.eps(), config.weightDecay());
        }
    }

    public Config config() { return config; }

    /** Updates taken so far. */
    public int stepCount() { return step; }

    /** Number of parameter buffers, and of buffers in each moment. */
    public int bufferCount() { return m.size(); }

    /** The first moment of the parameters in buffer {@code i}. */
    public Tensor firstMoment(int i) { return m.get(i); }

    /** The second moment of the parameters in buffer {@code i}. */
    public Tensor secondMoment(int i) { return v.get(i); }

    /** The first moment, for parameters in one buffer (self-test, tests). */
    public Tensor firstMoment() { return only(m); }

    /** The second moment, for parameters in one buffer. */
    public Tensor secondMoment() { return only(v); }

    /** Continues from a checkpoint: the step count and both moments, one host array per buffer. */
    public void restore(Backend be, int stepCount, List<float[]> firstMoment, List<float[]> secondMoment) {
        if (firstMoment.size() != m.size() || secondMoment.size() != v.size()) {
            throw new IllegalArgumentException("Adam state of " + firstMoment.size() + " buffers for " + m.size());
        }
        for (int i = 0; i < m.size(); i++) {
            if (firstMoment.get(i).length != m.get(i).size() || secondMoment.get(i).length != v.get(i).size()) {
                throw new IllegalArgumentException("Adam state of " + firstMoment.get(i).length + " values for "
                        + m.get(i).size() + " parameters in buffer " + i);
            }
            be.copyFromHost(m.get(i), firstMoment.get(i), 0);
            be.copyFromHost(v.get(i), secondMoment.get(i), 0);
        }
        this.step = stepCount;
    }

    private static Tensor only(List<Tensor> moment) {
        if (moment.size() != 1) throw new IllegalStateException("Adam's moments span " + moment.size() + " buffers, not one");
        return moment.getFirst();
    }
}
