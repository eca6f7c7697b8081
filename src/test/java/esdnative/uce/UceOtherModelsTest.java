package esdnative.uce;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * UCE on SD 2.x (tiny-sd2-a, a diffusers folder: OpenCLIP-style text encoder, linear projections, cross_attention_dim
 * 8): no fixture of the authors' code exists for it, so: the shapes work, an erase moves every edited weight, and
 * the closed form's defining properties hold — preserve-only leaves W unchanged, and W_new c_e moves to the target
 * of the one-concept formula (README-uce.md §1.5).
 */
class UceOtherModelsTest {

    @Test
    void sd2FolderEditsEveryKeyAndValueProjection() {
        try (Backend be = new CpuBackend()) {
            StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd2-a"), null, null);
            ConceptEncoder encoder = new ConceptEncoder(be, sd.tokenizer(), sd.textEncoder());
            UceSettings erase = new UceSettings(UceForm.F2025, List.of("Van Gogh"), List.of(""), List.of(), 1, null, 0.5);
            UceEdit.Result r = UceEdit.apply(be, encoder, sd.unetWeights(), erase);
            long expected = sd.unetWeights().asMap().keySet().stream().filter(UceEdit::isEdited).count();
            assertTrue(expected > 0);
            assertEquals(expected, r.edited().trained().asMap().size());

            // one concept, no preserve set: W_new c_e = (λ W c_e + s |c_e|² W c_g) / (λ + s |c_e|²)
            double[] ce = encoder.lastTokenStates(List.of("Van Gogh"))[0], cg = encoder.lastTokenStates(List.of(""))[0];
            double norm2 = 0;
            for (double v : ce) norm2 += v * v;
            for (var e : r.edited().trained().asMap().entrySet()) {
                float[] w = be.toHost(sd.unetWeights().get(e.getKey())), updated = be.toHost(e.getValue());
                int rows = e.getValue().dim(0), dim = e.getValue().dim(1);
                assertEquals(encoder.dim(), dim, e.getKey());
                for (int i = 0; i < rows; i++) {
                    double old = 0, guide = 0, now = 0;
                    for (int k = 0; k < dim; k++) {
                        old += w[i * dim + k] * ce[k];
                        guide += w[i * dim + k] * cg[k];
                        now += updated[i * dim + k] * ce[k];
                    }
                    double expectedNow = (0.5 * old + norm2 * guide) / (0.5 + norm2);
                    assertEquals(expectedNow, now, 1e-5 * (1 + Math.abs(expectedNow)), e.getKey() + " row " + i);
                }
            }

            UceSettings keep = new UceSettings(UceForm.F2025, List.of(), List.of(""), List.of("Van Gogh", "a cat"), 1, null, 0.5);
            UceEdit.Result same = UceEdit.apply(be, encoder, sd.unetWeights(), keep);
            for (var e : same.edited().trained().asMap().entrySet()) {
                assertArrayEquals(be.toHost(sd.unetWeights().get(e.getKey())), be.toHost(e.getValue()), e.getKey());
            }
        }
    }
}
