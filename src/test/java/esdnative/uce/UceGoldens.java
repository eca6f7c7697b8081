package esdnative.uce;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;

import java.nio.file.Path;

/** The tiny-sd-a-uce-golden fixtures (README-uce.md): files by manifest name, their float64 twins and tolerances. */
final class UceGoldens {
    static final String DIR = "tiny-sd-a-uce-golden";

    private UceGoldens() {}

    static JsonNode manifest() { return Json.tree(Fixtures.path(DIR).resolve("manifest.json")); }

    static JsonNode testCase(String name) { return manifest().path("cases").path(name); }

    static Path file(String name) { return Fixtures.path(DIR).resolve(name + ".npy"); }

    /** The float64 twin of {@code name} ("case/x" → "case/f64/x"). */
    static double[] twin(String name) {
        int slash = name.lastIndexOf('/');
        return Npy.read(Fixtures.path(DIR).resolve(name.substring(0, slash) + "/f64/" + name.substring(slash + 1) + ".npy")).doubles();
    }

    static float[] floats(String name) { return Npy.read(file(name)).floats(); }

    static long[] longs(String name) { return Npy.read(file(name)).longs(); }

    /** The manifest's suggested_atol: 10× the golden's own float32-vs-float64 error. */
    static double atol(String name) {
        JsonNode atol = manifest().path("files").path(name).path("f32_vs_f64").path("suggested_atol");
        if (!atol.isNumber()) throw new IllegalArgumentException("manifest.json has no suggested_atol for " + name);
        return atol.asDouble();
    }

    /** Asserts max |actual − golden| ≤ the manifest's atol and max |actual − twin| ≤ twinAtol; prints both. */
    static void assertClose(String name, float[] actual, double twinAtol) {
        Goldens.assertClose(name, floats(name), actual, atol(name));
        Goldens.assertClose(name + " vs its float64 twin", twin(name), actual, twinAtol);
    }
}
