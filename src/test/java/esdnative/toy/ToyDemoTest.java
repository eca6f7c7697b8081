package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** A reduced default run on the shipped model: erasing "circle" must hurt circle far more than the other shapes. */
class ToyDemoTest {

    @Test
    void erasedClassDropsFarMoreThanTheOthers() {
        ToyDemo.Settings d = ToyDemo.Settings.defaults("circle");
        ToyDemo.Settings reduced = new ToyDemo.Settings("circle", 40, d.lr(), d.negativeGuidance(),
                d.startGuidance(), d.ddimSteps(), d.method(), new ToyEval.Settings(8, 10, 5f, 0), 0);
        try (Backend be = new CpuBackend()) {
            ToyDemo.Report r = ToyDemo.run(be, reduced, null, System.err);
            double erasedDrop = 100 * (r.before()[r.erased()] - r.after()[r.erased()]);
            // 8 samples per class: accuracies move in 12.5-point steps, so demand a clear margin
            assertTrue(r.before()[r.erased()] >= 0.5, "circle before: " + r.before()[r.erased()]);
            assertTrue(erasedDrop >= r.othersDrop() + 30, "circle drop " + erasedDrop + " vs others' mean " + r.othersDrop());
        }
    }
}
