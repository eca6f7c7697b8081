package esdnative.backend.cuda;

import esdnative.backend.RepeatedStep;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * {@link esdnative.backend.Backend#repeatedStep} on CUDA graphs: the first call of a step (per key and input
 * shapes) runs eagerly, as a warm-up; the second records the step's launches, GEMMs, memsets and copies into a
 * graph (stream capture) and launches it; every later call copies its inputs into the graph's own input tensors,
 * launches the graph (one driver call instead of hundreds) and copies the output out. A step whose warm-up moved
 * data to or from the host or waited for the device cannot be recorded: it keeps running eagerly.
 *
 * <p>Memory: the captured work's tensors come from a {@link GraphPool} of the graph's own, kept at their addresses
 * while the graph may be launched; at most {@link #KEPT} graphs are kept, the least recently used destroyed first.
 */
final class CudaGraphs implements AutoCloseable {
    /** graphs kept at once: an ESD run samples with two sets of weights at most (the trained and the frozen) */
    private static final int KEPT = 2;

    /** A step by its caller's key and its inputs' shapes (a graph is recorded for fixed shapes). */
    private record Key(Object step, List<List<Integer>> shapes) {}

    /** What is known of a key: warmed up (record it next), not recordable, or recorded. */
    private sealed interface State permits Warmed, Eager, Recorded {}

    private record Warmed() implements State {}

    private record Eager() implements State {}

    /** A recorded step: its graph, its input tensors, its output, and the attention traffic of one launch. */
    private record Recorded(Device.RecordedGraph graph, GraphPool pool, Tensor[] inputs, Tensor output,
                            long attentionBytes) implements State {}

    private final CudaBackend backend;
    private final Device device;
    private final CudaAllocator allocator;
    private final boolean enabled;
    /** the backend's attention-traffic counter, to learn what one launch of a recorded step moves */
    private final LongSupplier attentionBytes;
    private final Map<Key, State> states = new LinkedHashMap<>(16, 0.75f, true); // least recently used first
    private long replays;
    private long replayedAttentionBytes;

    CudaGraphs(CudaBackend backend, Device device, CudaAllocator allocator, boolean enabled, LongSupplier attentionBytes) {
        this.backend = backend;
        this.device = device;
        this.allocator = allocator;
        this.enabled = enabled;
        this.attentionBytes = attentionBytes;
    }

    /** Runs the step: eagerly, or through its graph (see the class comment). */
    Tensor run(Object stepKey, Tensor[] inputs, RepeatedStep step) {
        if (!enabled) return step.run(inputs);
        Key key = new Key(stepKey, shapes(inputs));
        State state = states.get(key);
        if (state == null) {
            long before = device.hostInteractions();
            Tensor out = step.run(inputs);
            states.put(key, device.hostInteractions() == before ? new Warmed() : new Eager());
            return out;
        }
        if (state instanceof Eager) return step.run(inputs);
        Recorded graph;
        if (state instanceof Recorded r) {
            graph = r;
            for (int i = 0; i < inputs.length; i++) backend.copy(graph.inputs()[i], inputs[i]);
            graph.graph().launch();
            replays++;
            replayedAttentionBytes += graph.attentionBytes();
            step.replayed();
        } else {
            graph = capture(inputs, step);
            states.put(key, graph);
            graph.graph().launch();
            evictBeyondKept();
        }
        // the graph's output is overwritten by its next launch: the caller gets a copy
        Tensor out = backend.zeros(graph.output().shape());
        backend.copy(out, graph.output());
        return out;
    }

    /** Attention bytes the replayed launches moved (the backend counts the recorded and eager ones itself). */
    long replayedAttentionBytes() { return replayedAttentionBytes; }

    /** E.g. "; CUDA graphs: 1 kept (412.0 MiB), 24 replays", or "" when none was recorded. */
    String describe() {
        long kept = 0, bytes = 0;
        for (State s : states.values()) {
            if (s instanceof Recorded r) {
                kept++;
                bytes += r.pool().bytes();
            }
        }
        if (kept == 0 && replays == 0) return "";
        return String.format(Locale.ROOT, "; CUDA graphs: %d kept (%.1f MiB), %d replays", kept,
                bytes / (double) (1L << 20), replays);
    }

    /** Destroys every graph and frees its memory. */
    @Override
    public void close() {
        for (State s : states.values()) if (s instanceof Recorded r) destroy(r);
        states.clear();
    }

    /**
     * Records the step into a graph: its inputs are copied (eagerly) into tensors of the graph's pool, then the
     * step runs on those while the stream is captured, every tensor it makes coming from the pool too.
     */
    private Recorded capture(Tensor[] inputs, RepeatedStep step) {
        GraphPool pool = new GraphPool();
        allocator.capturing(pool);
        try {
            Tensor[] fixedInputs = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) {
                fixedInputs[i] = backend.allocate(inputs[i].shape());
                backend.copy(fixedInputs[i], inputs[i]);
            }
            long attentionBefore = attentionBytes.getAsLong();
            device.beginCapture();
            Tensor output;
            try {
                output = step.run(fixedInputs);
            } catch (RuntimeException | Error e) {
                try {
                    device.endCapture().close();
                } catch (RuntimeException invalidated) {
                    e.addSuppressed(invalidated);
                }
                throw e;
            }
            backend.disown(output); // the graph's, written at every launch: no scope of the caller's may recycle it
            Device.RecordedGraph graph = device.endCapture();
            return new Recorded(graph, pool, fixedInputs, output, attentionBytes.getAsLong() - attentionBefore);
        } catch (RuntimeException | Error e) {
            allocator.capturing(null);
            pool.seal();
            allocator.freePool(pool);
            throw e;
        } finally {
            allocator.capturing(null);
            pool.seal();
        }
    }

    private void evictBeyondKept() {
        int recorded = 0;
        for (State s : states.values()) if (s instanceof Recorded) recorded++;
        for (Iterator<State> it = states.values().iterator(); recorded > KEPT && it.hasNext(); ) {
            if (it.next() instanceof Recorded r) {
                destroy(r);
                it.remove();
                recorded--;
            }
        }
    }

    private void destroy(Recorded r) {
        r.graph().close();
        allocator.freePool(r.pool());
    }

    private static List<List<Integer>> shapes(Tensor[] inputs) {
        List<List<Integer>> out = new ArrayList<>(inputs.length);
        for (Tensor t : inputs) out.add(Arrays.stream(t.shape()).boxed().toList());
        return out;
    }
}
