package esdnative.backend;

import esdnative.tensor.Tensor;

/**
 * Work of fixed shapes that runs many times with new input values, such as a sampler's guided forward: see
 * {@link Backend#repeatedStep}.
 */
public interface RepeatedStep {
    /**
     * Queues the step's work on {@code inputs} and returns its output. It may read, besides the inputs, only
     * tensors that keep their storage while the step's key lives (weights), and must not move data to or from the
     * host: a backend that records the work replays exactly what this call queued.
     */
    Tensor run(Tensor[] inputs);

    /** The step's host-side bookkeeping (e.g. counting model evaluations), done for each replay of a recording. */
    void replayed();
}
