package esdnative.lora;

import esdnative.io.DType;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * UCE's closed-form ΔW (the authors' code, float64 twins in tiny-sd-a-uce-golden) has rank ≤ the number of edited
 * concepts: the extraction's truncation is zero (float64 rounding) at that rank and at the default 8, and not below it.
 */
class LoraUceDeltaTest {
    @ParameterizedTest(name = "{0}: {1} edited concepts")
    @CsvSource({"erase_single, 1", "erase_multi_preserve, 2", "moderate, 3"})
    void uceDeltasAreExactAtTheirRank(String scenario, int edits) throws IOException {
        Path dir = Fixtures.path("tiny-sd-a-uce-golden").resolve(scenario).resolve("f64");
        List<Path> deltas;
        try (Stream<Path> s = Files.list(dir)) {
            deltas = s.filter(p -> p.getFileName().toString().startsWith("delta__")).sorted().toList();
        }
        assertEquals(12, deltas.size(), "to_k and to_v of 6 transformer blocks");
        for (Path p : deltas) {
            NpyArray a = Npy.read(p);
            String name = p.getFileName().toString().replaceAll("^delta__|\\.npy$", "");
            double[] delta = a.doubles();
            double exact = LoraExtraction.factor(name, a.shape(), delta, new LoraSettings(edits, DType.F32)).truncation();
            double atDefault = LoraExtraction.factor(name, a.shape(), delta, LoraSettings.defaults()).truncation();
            assertTrue(exact < 1e-12 && atDefault < 1e-12, name + ": truncation " + exact + " at rank " + edits + ", " + atDefault + " at 8");
            if (edits > 1) {
                double below = LoraExtraction.factor(name, a.shape(), delta, new LoraSettings(edits - 1, DType.F32)).truncation();
                assertTrue(below > 1e-6, name + ": rank " + (edits - 1) + " already exact (" + below + "): the rank claim is not tested");
            }
        }
    }
}
