package esdnative.testing;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.Npy;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Compares float32 results with tiny-sd-a-golden files within the manifest's suggested_atol. */
public final class Goldens {
    private Goldens() {}

    /** The manifest's suggested_atol for a golden (10× the golden's own float32-vs-float64 error). */
    public static double suggestedAtol(String name) {
        return suggestedAtol(Fixtures.golden(""), name);
    }

    /** The suggested_atol of a golden in another golden folder (e.g. tiny-clip-golden). */
    public static double suggestedAtol(Path folder, String name) {
        JsonNode atol = Json.tree(folder.resolve("manifest.json"))
                .path("files").path(name).path("f32_vs_f64").path("suggested_atol");
        if (!atol.isNumber()) throw new IllegalArgumentException("manifest.json has no suggested_atol for " + name);
        return atol.asDouble();
    }

    /** Asserts max |actual − golden| ≤ suggested_atol for {@code name}.npy, printing the measured error. */
    public static void assertClose(String name, float[] actual) {
        assertClose(Fixtures.golden(""), name, actual);
    }

    /** {@link #assertClose(String, float[])} for a golden in another golden folder. */
    public static void assertClose(Path folder, String name, float[] actual) {
        float[] expected = Npy.read(folder.resolve(name + ".npy")).floats();
        assertEquals(expected.length, actual.length, name + ": size");
        double atol = suggestedAtol(folder, name);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        System.out.printf("%s: max |java - golden| = %.3g (atol %.3g)%n", name, worst, atol);
        assertTrue(worst <= atol, name + ": max abs error " + worst + " > " + atol);
    }
}
