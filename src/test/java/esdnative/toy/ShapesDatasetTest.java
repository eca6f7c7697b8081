package esdnative.toy;

import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ShapesDatasetTest {
    private final ShapesDataset data = new ShapesDataset(16);

    @Test
    void sameSeedSameImages() {
        Rng a = new Rng(7), b = new Rng(7);
        for (int i = 0; i < 5; i++) {
            ShapesDataset.Sample x = data.next(a), y = data.next(b);
            assertArrayEquals(x.pixels(), y.pixels());
            assertEquals(x.prompt(), y.prompt());
        }
    }

    @Test
    void pixelsInRangeAndShapeCoversPartOfTheImage() {
        Rng rng = new Rng(1);
        for (int shape = 0; shape < ShapesDataset.CLASSES.size(); shape++) {
            for (int i = 0; i < 10; i++) {
                ShapesDataset.Sample s = data.draw(rng, shape);
                int covered = 0;
                for (int p = 0; p < 256; p++) {
                    for (int c = 0; c < 3; c++) {
                        float v = s.pixels()[c * 256 + p];
                        assertTrue(v >= -1 && v <= 1, "pixel " + v);
                    }
                    // the background is at most 0.25 (-0.5 in [-1, 1]) in every channel; every colour reaches ≥ 0.9 in one
                    float max = Math.max(s.pixels()[p], Math.max(s.pixels()[256 + p], s.pixels()[512 + p]));
                    if (max > 0.5f) covered++;
                }
                assertTrue(covered >= 12 && covered <= 200, ShapesDataset.CLASSES.get(shape) + " covers " + covered + " pixels");
            }
        }
    }

    @Test
    void promptsMixBareWordArticleAndColour() {
        Rng rng = new Rng(3);
        Set<String> forms = new HashSet<>();
        for (int i = 0; i < 60; i++) {
            ShapesDataset.Sample s = data.draw(rng, 0);
            String p = s.prompt();
            forms.add(p.equals("circle") ? "bare" : p.equals("a circle") ? "article" : "colour");
            if (!p.equals("circle") && !p.equals("a circle")) {
                assertEquals("a " + ShapesDataset.COLOURS.get(s.colour()) + " circle", p);
            }
        }
        assertEquals(Set.of("bare", "article", "colour"), forms);
    }

    @Test
    void shapesAreDistinctMasks() {
        // the unit-radius masks of any two classes differ on at least 5% of a fine grid
        int n = 64;
        for (int a = 0; a < 8; a++) {
            for (int b = a + 1; b < 8; b++) {
                int differ = 0;
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < n; j++) {
                        double u = -1 + 2 * (i + 0.5) / n, v = -1 + 2 * (j + 0.5) / n;
                        if (ShapesDataset.contains(a, u, v) != ShapesDataset.contains(b, u, v)) differ++;
                    }
                }
                assertTrue(differ > n * n / 20, ShapesDataset.CLASSES.get(a) + " vs " + ShapesDataset.CLASSES.get(b) + ": " + differ);
            }
        }
    }
}
