package esdnative.model;

import esdnative.backend.Backend;
import esdnative.tensor.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;

/**
 * A model's named tensors (parameters, or their gradients), in declaration order, each a view of one flat
 * buffer (llm.c's ParameterTensors), so an optimiser can run over the buffer in one pass.
 *
 * <p>Models look their tensors up by name (diffusers names, e.g. "down_blocks.0.resnets.0.conv1.weight").
 * {@link #withReplaced} makes the trainable twin of a frozen model: the same tensors except a trained subset,
 * so only that subset is held twice.
 */
public final class Weights {
    private final SequencedMap<String, Tensor> tensors;
    /** The one buffer all tensors view, in order and without gaps; null once some were replaced. */
    private final Tensor flat;

    private Weights(SequencedMap<String, Tensor> tensors, Tensor flat) {
        this.tensors = tensors;
        this.flat = flat;
    }

    /** One zero-filled flat buffer holding every named shape, in the order given. */
    public static Weights allocate(Backend backend, SequencedMap<String, int[]> shapes) {
        long total = elementCount(shapes);
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(total + " elements do not fit one buffer");
        }
        return over(backend.zeros((int) total), shapes);
    }

    /** Number of elements of all the shapes together. */
    public static long elementCount(SequencedMap<String, int[]> shapes) {
        long total = 0;
        for (int[] shape : shapes.values()) total += Tensor.sizeOf(shape);
        return total;
    }

    /** Named views, in order, over an existing buffer of at least {@link #elementCount} elements. */
    public static Weights over(Tensor flat, SequencedMap<String, int[]> shapes) {
        SequencedMap<String, Tensor> views = new LinkedHashMap<>();
        long offset = 0;
        for (var e : shapes.entrySet()) {
            views.put(e.getKey(), flat.view(offset, e.getValue()));
            offset += Tensor.sizeOf(e.getValue());
        }
        return new Weights(views, flat);
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

    /** The single buffer that holds every tensor back to back (for one-pass optimisers and zeroing). */
    public Tensor flat() {
        if (flat == null) throw new IllegalStateException("these weights are not one flat buffer");
        return flat;
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
        return new Weights(copy, null);
    }
}
