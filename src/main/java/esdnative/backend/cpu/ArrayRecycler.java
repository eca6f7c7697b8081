package esdnative.backend.cpu;

import esdnative.backend.Scope;
import esdnative.backend.ScopeStack;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Map;
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
    private final ScopeStack<float[]> scopes = new ScopeStack<>(CpuStorage::array, this::give);

    /** A zero-filled array of at least {@code size} floats. */
    float[] allocate(int size) {
        if (!scopes.inScope()) return new float[size];
        float[] a = take(size);
        if (a == null) {
            a = new float[size];
        } else {
            Arrays.fill(a, 0, size, 0f);
        }
        scopes.own(a);
        return a;
    }

    Scope openScope() { return scopes.open(); }

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
}
