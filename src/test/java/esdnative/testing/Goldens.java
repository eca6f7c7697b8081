package esdnative.testing;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.Npy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Compares float32 results with golden files (tiny-sd-a-golden unless named) within the manifest's suggested_atol. */
public final class Goldens {
    private Goldens() {}

    /** The manifest's suggested_atol for a golden (10× the golden's own float32-vs-float64 error). */
    public static double suggestedAtol(String name) {
        return suggestedAtol("tiny-sd-a-golden", name);
    }

    /** The suggested_atol of a golden in another golden folder of the fixtures (e.g. tiny-sd2-a-golden). */
    public static double suggestedAtol(String goldenDir, String name) {
        JsonNode atol = Json.tree(Fixtures.path(goldenDir).resolve("manifest.json"))
                .path("files").path(name).path("f32_vs_f64").path("suggested_atol");
        if (!atol.isNumber()) throw new IllegalArgumentException("manifest.json has no suggested_atol for " + name);
        return atol.asDouble();
    }

    /** Asserts max |actual − golden| ≤ suggested_atol for {@code name}.npy, printing the measured error. */
    public static void assertClose(String name, float[] actual) {
        assertClose("tiny-sd-a-golden", name, actual);
    }

    /** {@link #assertClose(String, float[])} for a golden of another golden folder (e.g. tiny-sd2-a-golden). */
    public static void assertClose(String goldenDir, String name, float[] actual) {
        float[] expected = Npy.read(Fixtures.path(goldenDir).resolve(name + ".npy")).floats();
        assertEquals(expected.length, actual.length, name + ": size");
        double atol = suggestedAtol(goldenDir, name);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        System.out.printf("%s: max |java - golden| = %.3g (atol %.3g)%n", name, worst, atol);
        assertTrue(worst <= atol, name + ": max abs error " + worst + " > " + atol);
    }
}
