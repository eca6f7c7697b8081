package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code toy demo --method uce}, reduced: erasing "circle" must hurt circle far more than the other shapes (whose
 * words are orthogonal to it in the toy's text space, so UCE leaves them alone), and the written model must be
 * what {@code toy eval} judges the same way.
 */
class ToyUceDemoTest {

    @Test
    void erasesCircleAndWritesAModelTheEvalReads(@TempDir Path tmp) {
        ToyDemo.Settings d = ToyDemo.Settings.defaults("circle");
        ToyEval.Settings eval = new ToyEval.Settings(8, 10, 5f, 0);
        ToyDemo.Settings reduced = new ToyDemo.Settings("circle", d.iterations(), d.lr(), d.negativeGuidance(),
                d.startGuidance(), d.ddimSteps(), d.method(), eval, 0);
        try (Backend be = new CpuBackend(); ToyAssets assets = ToyAssets.extract()) {
            ToyDemo.Report r = ToyUceDemo.run(be, reduced, null, tmp, System.err);
            double erasedDrop = 100 * (r.before()[r.erased()] - r.after()[r.erased()]);
            // 8 samples per class: accuracies move in 12.5-point steps, so demand a clear margin
            assertTrue(r.before()[r.erased()] >= 0.5, "circle before: " + r.before()[r.erased()]);
            assertTrue(erasedDrop >= r.othersDrop() + 30, "circle drop " + erasedDrop + " vs others' mean " + r.othersDrop());

            StableDiffusion written = ModelLoader.load(be, tmp.resolve("model"), null, null);
            ShapeJudge judge = ShapeJudge.load(be, assets.judge());
            assertArrayEquals(r.after(), ToyEval.run(be, written, written.unetWeights(), judge, eval).accuracy());
        }
    }
}
