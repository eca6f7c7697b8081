package esdnative.backend;

import esdnative.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The bookkeeping behind a backend's {@link Scope}s, per thread: which allocations (keys: a CPU array, a CUDA
 * storage) each open scope owns, which {@link Scope#keep} passes to the enclosing scope, and which a closing scope
 * hands back to the backend to recycle. Keys are compared by identity.
 *
 * @param <K> what identifies one allocation
 */
public final class ScopeStack<K> {
    private final Function<Tensor, K> keyOf;
    private final Consumer<K> recycle;
    private final ThreadLocal<ArrayDeque<Open>> open = ThreadLocal.withInitial(ArrayDeque::new);

    /** keyOf: the allocation a tensor views; recycle: gives an allocation back, called once per unkept key. */
    public ScopeStack(Function<Tensor, K> keyOf, Consumer<K> recycle) {
        this.keyOf = keyOf;
        this.recycle = recycle;
    }

    /** Opens a scope on the calling thread, inside the ones already open there. */
    public Scope open() {
        Open s = new Open();
        open.get().push(s);
        return s;
    }

    /** Whether the calling thread has a scope open: allocations made now are recycled at its close. */
    public boolean inScope() {
        return !open.get().isEmpty();
    }

    /** Gives a new allocation to the calling thread's innermost open scope (there must be one). */
    public void own(K key) {
        Open s = open.get().peek();
        if (s == null) throw new IllegalStateException("no scope open on this thread");
        s.owned.add(key);
    }

    private final class Open implements Scope {
        /**
         * each key once (own takes new allocations only; keep moves a key to one scope): a list, as a set of
         * identities costs a hash per allocation, and a UNet forward makes thousands
         */
        final List<K> owned = new ArrayList<>();
        private boolean closed;

        @Override
        public void keep(Tensor t) {
            if (closed) throw new IllegalStateException("keep after the scope closed");
            K key = keyOf.apply(t);
            if (!removeOwned(key)) return; // made outside this scope: not ours to recycle
            // the enclosing scope, if any, owns it now
            boolean below = false;
            for (Open s : open.get()) {
                if (below) {
                    s.owned.add(key);
                    return;
                }
                below = s == this;
            }
        }

        @Override
        public void close() {
            if (closed) return;
            ArrayDeque<Open> stack = open.get();
            if (stack.peek() != this) throw new IllegalStateException("scopes must close innermost first, on their thread");
            stack.pop();
            closed = true;
            for (K key : owned) recycle.accept(key);
            owned.clear();
        }

        /** Removes {@code key} (by identity) if owned, searching the newest first: kept tensors are mostly recent. */
        private boolean removeOwned(K key) {
            for (int i = owned.size() - 1; i >= 0; i--) {
                if (owned.get(i) == key) {
                    owned.remove(i);
                    return true;
                }
            }
            return false;
        }
    }
}
