package esdnative.testing;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.Npy;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The one place tests compare float32 results with a reference: a golden file within its manifest's suggested_atol,
 * or any expected values (a float64 twin, finite differences, another run) within an absolute or a relative tolerance.
 * Each comparison prints the error it measured.
 */
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
        assertClose(name, Npy.read(folder.resolve(name + ".npy")).floats(), actual, suggestedAtol(folder, name));
    }

    /** Asserts max |actual − expected| ≤ atol (and equal sizes), printing the measured error. */
    public static void assertClose(String what, float[] expected, float[] actual, double atol) {
        assertClose(what, toDouble(expected), actual, atol);
    }

    /** {@link #assertClose(String, float[], float[], double)} against float64 values. */
    public static void assertClose(String what, double[] expected, float[] actual, double atol) {
        double worst = maxAbsError(expected, actual);
        System.out.printf("%s: max |java - expected| = %.3g (atol %.3g)%n", what, worst, atol);
        assertTrue(worst <= atol, what + ": max abs error " + worst + " > " + atol);
    }

    /** Asserts max |actual − expected| / max |expected| ≤ rtol (and equal sizes), printing the measured error. */
    public static void assertRelClose(String what, float[] expected, float[] actual, double rtol) {
        assertRelClose(what, toDouble(expected), actual, rtol);
    }

    /** {@link #assertRelClose(String, float[], float[], double)} against float64 values. */
    public static void assertRelClose(String what, double[] expected, float[] actual, double rtol) {
        double err = relLinf(expected, actual);
        System.out.printf("%s: rel L-inf error %.2e (rtol %.1e)%n", what, err, rtol);
        assertTrue(err <= rtol, what + ": rel L∞ error " + err + " > " + rtol);
    }

    /** max |actual − expected| / max |expected| (the absolute error where expected is all zeros). */
    public static double relLinf(float[] expected, float[] actual) {
        return relLinf(toDouble(expected), actual);
    }

    /** {@link #relLinf(float[], float[])} against float64 values. */
    public static double relLinf(double[] expected, float[] actual) {
        double scale = 0;
        for (double e : expected) scale = Math.max(scale, Math.abs(e));
        double worst = maxAbsError(expected, actual);
        return scale == 0 ? worst : worst / scale;
    }

    private static double maxAbsError(double[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, "size");
        double worst = 0;
        for (int i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        return worst;
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }
}
