package esdnative.testing;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.io.SafetensorsFile;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.nio.file.Path;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tiny-sdxl-a fixture (README-sdxl.md): its diffusers folder, its goldens, and comparisons within the
 * manifest's tolerances (suggested_atol: 10× the golden's own float32-vs-float64 error).
 */
public final class TinySdxl {
    private TinySdxl() {}

    /** The diffusers folder tiny-sdxl-a/ (or a file in it). */
    public static Path model(String relative) {
        return Fixtures.path("tiny-sdxl-a").resolve(relative);
    }

    public static Path golden(String name) {
        return Fixtures.path("tiny-sdxl-a-golden").resolve(name);
    }

    public static NpyArray npy(String name) {
        return Npy.read(golden(name + ".npy"));
    }

    public static Tensor tensor(Backend be, String name) {
        NpyArray a = npy(name);
        return be.fromHost(a.floats(), a.shape());
    }

    /** The manifest entry's float32-vs-float64 value {@code key} (suggested_atol, suggested_rel_linf). */
    public static double tolerance(String name, String key) {
        JsonNode v = Json.tree(golden("manifest.json")).path("files").path(name).path("f32_vs_f64").path(key);
        if (!v.isNumber()) throw new IllegalArgumentException("manifest.json has no " + key + " for " + name);
        return v.asDouble();
    }

    /** The declared tensors of a component's safetensors file (the names must match; the values are compared later). */
    public static Weights weights(Backend be, SequencedMap<String, int[]> shapes, String file, String prefix) {
        try (SafetensorsFile st = SafetensorsFile.open(model(file))) {
            return Weights.load(be, shapes, name -> st.readFloats(prefix + name));
        }
    }

    /** Same shape, and max |ours − golden| ≤ the manifest's suggested_atol ({@link Goldens#assertClose}). */
    public static void assertClose(Backend be, String name, Tensor ours) {
        assertArrayEquals(npy(name).shape(), ours.shape(), name + " shape");
        Goldens.assertClose(golden(""), name, be.toHost(ours));
    }

    /** Same shape, and max |ours − golden| ≤ {@code atol} (for a bound the manifest's float64 twin cannot give). */
    public static void assertClose(Backend be, String name, Tensor ours, double atol) {
        assertClose(name, ours.shape(), be.toHost(ours), atol);
    }

    /** {@link #assertClose(Backend, String, Tensor, double)} for host values of the given shape. */
    public static void assertClose(String name, int[] shape, float[] o, double atol) {
        assertArrayEquals(npy(name).shape(), shape, name + " shape");
        float[] ref = npy(name).floats();
        double worst = 0;
        for (int i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - o[i]));
        System.out.printf("%s: max |java - golden| = %.3g (atol %.3g)%n", name, worst, atol);
        assertTrue(worst <= atol, name + ": max abs error " + worst + " > " + atol);
    }

    /** max |ours − golden| / max |golden| ≤ {@code rel}. */
    public static void assertRelClose(String name, float[] ours, double rel) {
        float[] ref = npy(name).floats();
        double worst = 0, scale = 0;
        for (int i = 0; i < ref.length; i++) {
            worst = Math.max(worst, Math.abs(ref[i] - ours[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        System.out.printf("%-80s rel %.3e  bound %.1e%n", name, worst / scale, rel);
        assertTrue(worst / scale <= rel, name + ": relative error " + worst / scale + " > " + rel);
    }
}
