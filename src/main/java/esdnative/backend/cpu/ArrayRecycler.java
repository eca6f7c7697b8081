package esdnative.backend.cpu;

import esdnative.backend.Scope;
import esdnative.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The CPU backend's {@link Scope}s and the arrays they give back. A tensor made inside a scope gets a free array
 * of at least its size and at most twice it (the tensor views a prefix), zero-filled as {@code zeros} promises, or a
 * new one; the scope owns it until it closes or keeps it. Free arrays are capped at {@link #CAP_SHARE} of the Java
 * heap; past that, given-back arrays are left to the garbage collector.
 */
final class ArrayRecycler {
    /** share of the maximum Java heap that free arrays may hold */
    static final double CAP_SHARE = 1.0 / 8;

    private final long capFloats = (long) (Runtime.getRuntime().maxMemory() * CAP_SHARE / Float.BYTES);
    private final TreeMap<Integer, ArrayDeque<float[]>> free = new TreeMap<>(); // by array length
    private long freeFloats;
    private final ThreadLocal<ArrayDeque<OpenScope>> open = ThreadLocal.withInitial(ArrayDeque::new);

    /** A zero-filled array of at least {@code size} floats. */
    float[] allocate(int size) {
        OpenScope scope = open.get().peek();
        if (scope == null) return new float[size];
        float[] a = take(size);
        if (a == null) {
            a = new float[size];
        } else {
            Arrays.fill(a, 0, size, 0f);
        }
        scope.owned.add(a);
        return a;
    }

    Scope openScope() {
        OpenScope s = new OpenScope();
        open.get().push(s);
        return s;
    }

    private synchronized float[] take(int size) {
        Map.Entry<Integer, ArrayDeque<float[]>> e = free.ceilingEntry(size);
        if (e == null || e.getKey() > 2L * size) return null;
        float[] a = e.getValue().pop();
        if (e.getValue().isEmpty()) free.remove(e.getKey());
        freeFloats -= a.length;
        return a;
    }

    private synchronized void give(float[] a) {
        if (freeFloats + a.length > capFloats) return;
        free.computeIfAbsent(a.length, k -> new ArrayDeque<>()).push(a);
        freeFloats += a.length;
    }

    private final class OpenScope implements Scope {
        final Set<float[]> owned = Collections.newSetFromMap(new IdentityHashMap<>());
        private boolean closed;

        @Override
        public void keep(Tensor t) {
            if (closed) throw new IllegalStateException("keep after the scope closed");
            float[] a = CpuStorage.array(t);
            if (!owned.remove(a)) return; // made outside this scope: not ours to recycle
            // the enclosing scope, if any, owns it now
            boolean below = false;
            for (OpenScope s : open.get()) {
                if (below) {
                    s.owned.add(a);
                    return;
                }
                below = s == this;
            }
        }

        @Override
        public void close() {
            if (closed) return;
            ArrayDeque<OpenScope> stack = open.get();
            if (stack.peek() != this) throw new IllegalStateException("scopes must close innermost first, on their thread");
            stack.pop();
            closed = true;
            for (float[] a : owned) give(a);
            owned.clear();
        }
    }
}
