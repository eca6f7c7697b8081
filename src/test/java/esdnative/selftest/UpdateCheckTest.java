package esdnative.selftest;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Adam-update comparison passes updates made from gradients within the gradients' tolerance (where a relative
 * error of the update would fail them) and fails a wrong step, a flipped sign or a missing element.
 */
class UpdateCheckTest {
    private static final float LR = 1e-3f, EPS = 1e-8f;
    private static final OpCase.UpdateCheck CHECK = new OpCase.UpdateCheck("update", "grads", LR, EPS);
    private static final double TOLERANCE = 1e-5;

    /** A first Adam step's update, as the backends compute it in float. */
    private static float[] update(float[] g) {
        float[] u = new float[g.length];
        for (int i = 0; i < g.length; i++) u[i] = (float) (-LR * g[i] / (Math.abs(g[i]) + EPS));
        return u;
    }

    private static float[] gradients(double scale, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] g = new float[4000];
        for (int i = 0; i < g.length; i++) g[i] = (float) (scale * r.nextGaussian());
        return g;
    }

    /** g with a relative error of {@code relative} in norm, spread over all elements. */
    private static float[] perturbed(float[] g, double relative, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double rms = 0;
        for (float v : g) rms += v * v;
        rms = Math.sqrt(rms / g.length);
        float[] out = g.clone();
        for (int i = 0; i < g.length; i++) out[i] += (float) (relative * rms * r.nextGaussian());
        return out;
    }

    private static String problem(float[] g, float[] candidateUpdate) {
        return SelfTest.updateProblem(CHECK, Map.of("grads", g, "update", update(g)), Map.of("update", candidateUpdate),
                TOLERANCE);
    }

    @Test
    void gradientsWithinTheirToleranceGiveAnAcceptedUpdate() {
        for (double scale : new double[] {1e-2, 3.7e-7}) { // sign regime, and gradients near eps (the tiny UNet's)
            float[] g = gradients(scale, 1);
            float[] near = perturbed(g, 0.5 * TOLERANCE, 2);
            assertTrue(SelfTest.relativeError(update(near), update(g)) > TOLERANCE,
                    "the update's relative error alone would fail it");
            assertNull(problem(g, update(near)), "scale " + scale);
        }
    }

    @Test
    void aWrongStepAFlippedSignOrAMissingValueFails() {
        float[] g = gradients(1e-2, 3);
        float[] longer = update(g);
        for (int i = 0; i < longer.length; i++) longer[i] *= 1.01f;
        assertNotNull(problem(g, longer));

        float[] flipped = update(g);
        int largest = 0;
        for (int i = 0; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[largest])) largest = i;
        flipped[largest] = -flipped[largest];
        assertNotNull(problem(g, flipped));

        float[] unwritten = update(g);
        unwritten[largest] = Float.NaN;
        assertNotNull(problem(g, unwritten));
    }
}
