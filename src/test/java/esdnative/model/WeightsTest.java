package esdnative.model;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.backend.cuda.EmulatedCuda;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.optim.Adam;
import esdnative.tensor.Storage;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WeightsTest {

    /** Storage that only reserves a size: lays out billions of elements without holding them. */
    private record Reserved(long capacity) implements Storage {}

    @Test
    void moreThanTwoToThe31ElementsSpanSeveralBuffersEachTensorInsideOne() {
        // three SD 1.4 UNets side by side: 2.58 billion elements, about SDXL's UNet (2.57 billion)
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        for (String copy : List.of("a.", "b.", "c.")) {
            UNet2DConditionModel.parameterShapes(UNetConfig.sd14()).forEach((name, shape) -> shapes.put(copy + name, shape));
        }
        long total = Weights.elementCount(shapes);
        assertTrue(total > 1L << 31, "the set must exceed 2^31 elements, has " + total);

        Weights w = Weights.allocate(n -> new Tensor(new Reserved(n), 0, n), shapes, Weights.MAX_BUFFER);

        assertEquals(total, w.elementCount());
        assertEquals(List.copyOf(shapes.keySet()), List.copyOf(w.asMap().keySet()));
        List<Tensor> buffers = w.buffers();
        assertEquals(2, buffers.size());
        assertEquals(total, buffers.stream().mapToLong(Tensor::size).sum());
        // in order, without gaps: each tensor starts where the previous ended, or at the start of the next buffer
        int buffer = 0;
        long next = 0;
        for (var e : w.asMap().entrySet()) {
            Tensor t = e.getValue();
            if (t.storage() != buffers.get(buffer).storage()) {
                assertEquals(buffers.get(buffer).size(), next, "buffer " + buffer + " ends where its last tensor ends");
                buffer++;
                next = 0;
            }
            assertEquals(buffers.get(buffer).storage(), t.storage(), e.getKey());
            assertEquals(next, t.offset(), e.getKey());
            assertArrayEquals(shapes.get(e.getKey()), t.shape(), e.getKey());
            next += t.size();
        }
        assertEquals(buffers.size() - 1, buffer);
        assertEquals(buffers.getLast().size(), next);
        assertThrows(IllegalStateException.class, w::flat);
    }

    @Test
    void adamAndZeroingOverSeveralBuffersEqualOneBufferOnTheCpu() {
        try (Backend be = new CpuBackend()) {
            adamAndZeroingOverSeveralBuffersEqualOneBuffer(be);
        }
    }

    @Test
    void adamAndZeroingOverSeveralBuffersEqualOneBufferOnCuda() {
        try (Backend be = EmulatedCuda.create()) {
            adamAndZeroingOverSeveralBuffersEqualOneBuffer(be);
        }
    }

    private static void adamAndZeroingOverSeveralBuffersEqualOneBuffer(Backend be) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("a", new int[] {3, 5});
        shapes.put("b", new int[] {7});
        shapes.put("c", new int[] {4, 4});
        shapes.put("d", new int[] {2});
        // buffers of at most 20 elements: a | b | c d
        Weights params = Weights.allocate(be::zeros, shapes, 20);
        Weights grads = Weights.allocate(be::zeros, shapes, 20);
        assertEquals(3, params.buffers().size());
        Weights flatParams = Weights.allocate(be, shapes);
        Weights flatGrads = Weights.allocate(be, shapes);
        assertEquals(1, flatParams.buffers().size());

        Rng rng = new Rng(7);
        for (String name : shapes.keySet()) {
            float[] p = rng.normal((int) params.get(name).size());
            be.copyFromHost(params.get(name), p, 0);
            be.copyFromHost(flatParams.get(name), p, 0);
        }
        Adam.Config config = new Adam.Config(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f);
        Adam split = new Adam(be, params, config);
        Adam whole = new Adam(be, flatParams, config);
        for (int step = 0; step < 3; step++) {
            grads.fill(be, 0f);
            flatGrads.fill(be, 0f);
            for (String name : shapes.keySet()) {
                float[] g = rng.normal((int) grads.get(name).size());
                be.axpy(grads.get(name), 1f, be.fromHost(g, g.length), g.length);
                be.axpy(flatGrads.get(name), 1f, be.fromHost(g, g.length), g.length);
            }
            split.step(be, params, grads);
            whole.step(be, flatParams, flatGrads);
        }
        for (String name : shapes.keySet()) {
            assertArrayEquals(be.toHost(flatParams.get(name)), be.toHost(params.get(name)), name);
        }

        // an optimiser restored from the state of the first, buffer by buffer (as a checkpoint does), steps alike
        Adam resumed = new Adam(be, params, config);
        List<float[]> m = new ArrayList<>(), v = new ArrayList<>();
        for (int i = 0; i < split.bufferCount(); i++) {
            m.add(be.toHost(split.firstMoment(i)));
            v.add(be.toHost(split.secondMoment(i)));
        }
        resumed.restore(be, split.stepCount(), m, v);
        Weights before = Weights.allocate(be::zeros, shapes, 20);
        for (String name : shapes.keySet()) be.copy(before.get(name), params.get(name));
        split.step(be, params, grads);
        whole.step(be, flatParams, flatGrads);
        for (String name : shapes.keySet()) be.copy(params.get(name), before.get(name));
        resumed.step(be, params, grads);
        for (String name : shapes.keySet()) {
            assertArrayEquals(be.toHost(flatParams.get(name)), be.toHost(params.get(name)), name);
        }

        grads.fill(be, 0f);
        for (Tensor g : grads.asMap().values()) assertArrayEquals(new float[(int) g.size()], be.toHost(g));
    }

    @Test
    void aTensorLargerThanOneBufferIsRefusedByName() {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("small", new int[] {4});
        shapes.put("large", new int[] {5, 5});
        var e = assertThrows(IllegalArgumentException.class,
                () -> Weights.allocate(n -> new Tensor(new Reserved(n), 0, n), shapes, 20));
        assertTrue(e.getMessage().contains("large [5, 5] has 25 elements"), e.getMessage());
    }

    @Test
    void replacedWeightsHaveNoBuffersOfTheirOwn() {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("x", new int[] {2});
        Weights w = Weights.allocate(n -> new Tensor(new Reserved(n), 0, n), shapes, 20);
        Weights replaced = w.withReplaced(java.util.Map.of("x", new Tensor(new Reserved(2), 0, 2)));
        assertThrows(IllegalStateException.class, replaced::buffers);
        assertEquals(new ArrayList<>(w.asMap().keySet()), new ArrayList<>(replaced.asMap().keySet()));
    }
}
