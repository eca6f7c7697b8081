package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShapeJudgeTest {

    /**
     * Backward against central finite differences of the loss, for the largest-gradient element of every tensor.
     * The loss is float32 (about 1e-7 relative); with h = 1e-2 the difference quotient's rounding error is about
     * 1e-5 / 1e-2 = 1e-3 absolute, and its truncation error O(h²); 3% relative (or 2e-3 absolute) covers both.
     */
    @Test
    void gradientsMatchFiniteDifferences() {
        try (Backend be = new CpuBackend()) {
            Rng rng = new Rng(5);
            Weights params = Weights.allocate(be, ShapeJudge.parameterShapes(8));
            ToyInit.initialise(be, params, rng);
            ShapeJudge judge = new ShapeJudge(8, params);
            ShapeJudge.Batch batch = ShapeJudge.Batch.draw(be, new ShapesDataset(8), rng, 4);
            Weights grads = Weights.allocate(be, ShapeJudge.parameterShapes(8));
            judge.lossAndGradients(be, batch, grads);
            float h = 1e-2f;
            for (var e : params.asMap().entrySet()) {
                Tensor p = e.getValue();
                float[] g = be.toHost(grads.get(e.getKey()));
                int worst = 0;
                for (int i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[worst])) worst = i;
                float[] values = be.toHost(p);
                float original = values[worst];
                values[worst] = original + h;
                be.copyFromHost(p, values, 0);
                double plus = judge.lossAndGradients(be, batch, Weights.allocate(be, ShapeJudge.parameterShapes(8)));
                values[worst] = original - h;
                be.copyFromHost(p, values, 0);
                double minus = judge.lossAndGradients(be, batch, Weights.allocate(be, ShapeJudge.parameterShapes(8)));
                values[worst] = original;
                be.copyFromHost(p, values, 0);
                double numeric = (plus - minus) / (2 * h);
                assertEquals(numeric, g[worst], Math.max(2e-3, 0.03 * Math.abs(numeric)), e.getKey());
            }
        }
    }

    @Test
    void learnsTheShapes() {
        try (Backend be = new CpuBackend()) {
            ShapeJudge judge = ShapeJudge.train(be, 16, 60, 32, 2e-3f, 3, System.err);
            double accuracy = judge.accuracy(be, new ShapesDataset(16), new Rng(99), 128);
            // chance is 12.5%; the shipped judge (600 steps) reaches 98%
            assertTrue(accuracy > 0.4, "accuracy after 60 steps " + accuracy);
        }
    }
}
