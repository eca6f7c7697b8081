package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.clip.ClipTextModel;
import esdnative.text.ClipTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ToyTextTest {

    @Test
    void clipTokenizerReadsOurFilesAndEveryWordIsOneToken(@TempDir Path dir) {
        ToyText.writeTokenizer(dir);
        ClipTokenizer tok = ClipTokenizer.load(dir);
        assertEquals(ToyText.MAX_LENGTH, tok.maxLength());
        var vocab = ToyText.vocabulary();
        assertArrayEquals(new int[] {tok.bosId(), vocab.get("a</w>"), vocab.get("red</w>"), vocab.get("circle</w>"),
                tok.eosId(), tok.padId(), tok.padId(), tok.padId()}, tok.encodePadded("a red circle"));
        for (String w : ToyText.words()) {
            assertArrayEquals(new int[] {vocab.get(w + "</w>")}, tok.encode(w), w);
        }
    }

    @Test
    void wordsGiveNearlyOrthogonalContexts(@TempDir Path dir) {
        ToyText.writeTokenizer(dir);
        ClipTokenizer tok = ClipTokenizer.load(dir);
        try (Backend be = new CpuBackend()) {
            ClipTextModel enc = ToyText.encoder(be, 0);
            int h = ToyText.HIDDEN;
            float[] circle = be.toHost(enc.forward(tok.encodePadded("circle"), 1));
            float[] square = be.toHost(enc.forward(tok.encodePadded("square"), 1));
            // token 1 holds the word: orthogonal rows, perturbed only by the 0.1-scale position embedding
            double cos = cosine(circle, square, h, h);
            assertTrue(Math.abs(cos) < 0.2, "circle·square cosine " + cos);
            assertEquals(1.0, cosine(circle, square, 0, h), 1e-6); // BOS is shared
        }
    }

    private static double cosine(float[] a, float[] b, int offset, int n) {
        double dot = 0, na = 0, nb = 0;
        for (int i = offset; i < offset + n; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
