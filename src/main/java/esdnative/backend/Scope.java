package esdnative.backend;

import esdnative.tensor.Tensor;

/**
 * A region of a pass whose temporaries are given back to the backend when it closes (see
 * {@link Backend#openScope}): every tensor the backend created with {@link Backend#zeros} while the scope was the
 * thread's innermost one is recycled at {@link #close}, except those passed to {@link #keep}. Using a recycled
 * tensor after its scope closed reads and writes somebody else's data, so keep everything that outlives the scope.
 */
public interface Scope extends AutoCloseable {
    /** A scope that recycles nothing: its tensors are left to the garbage collector, as outside any scope. */
    Scope NONE = new Scope() {
        @Override
        public void keep(Tensor t) {}

        @Override
        public void close() {}
    };

    /** A scope of {@code be} for inference, or {@link #NONE} when training (backward needs every activation). */
    static Scope unlessTraining(Backend be, boolean train) {
        return train ? NONE : be.openScope();
    }

    /** {@code t} (and every view of its storage) outlives this scope: it passes to the enclosing scope, if any. */
    void keep(Tensor t);

    /** Recycles the scope's tensors that were not kept. Scopes close innermost first. */
    @Override
    void close();
}
