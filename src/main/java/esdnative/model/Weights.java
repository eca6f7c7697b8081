package esdnative.model;

import esdnative.backend.Backend;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * A model's named tensors (parameters, or their gradients), in declaration order, each a view of one of a few
 * buffers (llm.c's ParameterTensors), so an optimiser can run over the buffers in one pass each.
 *
 * <p>One buffer holds at most {@link #MAX_BUFFER} elements (a Java array's limit on the CPU): a set larger than that,
 * such as SDXL's UNet (2.57 billion parameters), is split, in order, into several buffers, each tensor wholly inside
 * one (no single tensor of SD or SDXL comes near the limit). Every set of today's SD 1.x/2.x models is one buffer.
 *
 * <p>Models look their tensors up by name (diffusers names, e.g. "down_blocks.0.resnets.0.conv1.weight").
 * {@link #withReplaced} makes the trainable twin of a frozen model: the same tensors except a trained subset,
 * so only that subset is held twice.
 */
public final class Weights {
    /** Most elements one buffer holds: the largest array the JVM reliably allocates. */
    public static final int MAX_BUFFER = Integer.MAX_VALUE - 8;

    private final SequencedMap<String, Tensor> tensors;
    /** The buffers the tensors view, in order and without gaps; empty once some were replaced. */
    private final List<Tensor> buffers;

    private Weights(SequencedMap<String, Tensor> tensors, List<Tensor> buffers) {
        this.tensors = tensors;
        this.buffers = List.copyOf(buffers);
    }

    /** Zero-filled buffers holding every named shape, in the order given. */
    public static Weights allocate(Backend backend, SequencedMap<String, int[]> shapes) {
        return allocate(backend::zeros, shapes, MAX_BUFFER);
    }

    /**
     * The shapes laid, in order, over buffers of at most {@code maxBuffer} elements made by {@code newBuffer}
     * (given a size): a new buffer starts where the next tensor would not fit the current one.
     */
    static Weights allocate(IntFunction<Tensor> newBuffer, SequencedMap<String, int[]> shapes, int maxBuffer) {
        SequencedMap<String, Tensor> views = new LinkedHashMap<>();
        List<Tensor> buffers = new ArrayList<>();
        for (SequencedMap<String, int[]> group : groups(shapes, maxBuffer)) {
            Tensor buffer = newBuffer.apply((int) elementCount(group));
            views.putAll(over(buffer, group).tensors);
            buffers.add(buffer);
        }
        return new Weights(views, buffers);
    }

    /** The shapes cut, in order, into runs of at most {@code maxBuffer} elements; at least one run. */
    private static List<SequencedMap<String, int[]>> groups(SequencedMap<String, int[]> shapes, int maxBuffer) {
        List<SequencedMap<String, int[]>> groups = new ArrayList<>();
        SequencedMap<String, int[]> group = new LinkedHashMap<>();
        long filled = 0;
        for (var e : shapes.entrySet()) {
            long size = Tensor.sizeOf(e.getValue());
            if (size > maxBuffer) {
                throw new IllegalArgumentException("weight " + e.getKey() + " " + Arrays.toString(e.getValue()) + " has "
                        + size + " elements, more than one buffer holds (" + maxBuffer + ")");
            }
            if (filled + size > maxBuffer) {
                groups.add(group);
                group = new LinkedHashMap<>();
                filled = 0;
            }
            group.put(e.getKey(), e.getValue());
            filled += size;
        }
        groups.add(group);
        return groups;
    }

    /** Number of elements of all the shapes together. */
    public static long elementCount(SequencedMap<String, int[]> shapes) {
        long total = 0;
        for (int[] shape : shapes.values()) total += Tensor.sizeOf(shape);
        return total;
    }

    /** Named views, in order, over one existing buffer of at least {@link #elementCount} elements. */
    public static Weights over(Tensor flat, SequencedMap<String, int[]> shapes) {
        SequencedMap<String, Tensor> views = new LinkedHashMap<>();
        long offset = 0;
        for (var e : shapes.entrySet()) {
            views.put(e.getKey(), flat.view(offset, e.getValue()));
            offset += Tensor.sizeOf(e.getValue());
        }
        return new Weights(views, List.of(flat));
    }

    /**
     * Allocates every named shape and fills each from {@code source} (name → host floats of exactly that size,
     * e.g. read from a safetensors file).
     */
    public static Weights load(Backend backend, SequencedMap<String, int[]> shapes, Function<String, float[]> source) {
        Weights w = allocate(backend, shapes);
        for (var e : w.tensors.entrySet()) {
            float[] data = source.apply(e.getKey());
            if (data.length != e.getValue().size()) {
                throw new IllegalArgumentException("weight " + e.getKey() + ": got " + data.length
                        + " values for shape " + Arrays.toString(e.getValue().shape()));
            }
            backend.copyFromHost(e.getValue(), data, 0);
        }
        return w;
    }

    /**
     * Gives the buffers' memory back to the backend now ({@link Backend#release}): these weights, and any set that
     * shares their tensors, must not be used again.
     */
    public void release(Backend backend) {
        buffers().forEach(backend::release);
    }

    /** The named tensor; fails loudly when a model asks for a weight it never declared. */
    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("no weight named " + name);
        return t;
    }

    /** The named tensor, or null (e.g. a gradient that is not being computed). */
    public Tensor find(String name) {
        return tensors.get(name);
    }

    public boolean contains(String name) { return tensors.containsKey(name); }

    /** Names and tensors in declaration order (unmodifiable). */
    public SequencedMap<String, Tensor> asMap() {
        return Collections.unmodifiableSequencedMap(tensors);
    }

    /** The buffers that hold every tensor back to back, in order (for one-pass optimisers and zeroing). */
    public List<Tensor> buffers() {
        if (buffers.isEmpty()) throw new IllegalStateException("these weights are not laid over buffers of their own");
        return buffers;
    }

    /** The single buffer that holds every tensor back to back (sets of up to {@link #MAX_BUFFER} elements). */
    public Tensor flat() {
        if (buffers().size() != 1) {
            throw new IllegalStateException("these weights span " + buffers.size() + " buffers, not one; use buffers()");
        }
        return buffers.getFirst();
    }

    /** Sets every element of every buffer, e.g. zeroes gradients before a backward pass accumulates into them. */
    public void fill(Backend backend, float value) {
        for (Tensor buffer : buffers()) backend.fill(buffer, value);
    }

    /** Total number of elements. */
    public long elementCount() {
        long n = 0;
        for (Tensor t : tensors.values()) n += t.size();
        return n;
    }

    /** These weights with some tensors swapped for others of the same shape (e.g. trainable copies). */
    public Weights withReplaced(Map<String, Tensor> replacements) {
        SequencedMap<String, Tensor> copy = new LinkedHashMap<>(tensors);
        for (var e : replacements.entrySet()) {
            Tensor old = tensors.get(e.getKey());
            if (old == null) throw new IllegalArgumentException("no weight named " + e.getKey());
            if (!Arrays.equals(old.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("weight " + e.getKey() + ": shape " + Arrays.toString(e.getValue().shape())
                        + " does not match " + Arrays.toString(old.shape()));
            }
            copy.put(e.getKey(), e.getValue());
        }
        return new Weights(copy, List.of());
    }
}
