package esdnative.eval;

import esdnative.util.UserError;
import esdnative.esd.ConceptPresets;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EvalPromptsTest {

    /** pandas' to_csv layout: an unnamed index column, quoted fields with commas and doubled quotes, "42.0" seeds. */
    @Test
    void readsThePaperCsvLayout() {
        String csv = ",case_number,prompt,evaluation_seed,class\n"
                + "0,0,\"a church, at night\",42.0,church\n"
                + "1,7,\"the \"\"best\"\" tench\",3,tench\r\n"
                + "2,9,a plain prompt,5,\n";
        EvalPrompts p = EvalPrompts.fromCsv(Path.of("x.csv"), csv);
        assertEquals(3, p.prompts().size());
        assertEquals(new EvalPrompt("a church, at night", 42, 0, "church"), p.prompts().get(0));
        assertEquals(new EvalPrompt("the \"best\" tench", 3, 7, "tench"), p.prompts().get(1));
        assertNull(p.prompts().get(2).className());
        assertEquals(List.of("church", "tench"), p.classes());
        assertEquals("an image of a church", p.classText("church"));
    }

    @Test
    void refusesACsvWithoutItsColumns() {
        assertThrows(UserError.class, () -> EvalPrompts.fromCsv(Path.of("x.csv"), "text,seed\na,1\n"));
        assertThrows(UserError.class, () -> EvalPrompts.fromCsv(Path.of("x.csv"), "prompt,evaluation_seed\na,b\n"));
    }

    @Test
    void plainTextIsOnePromptALineAtTheGivenSeed() {
        EvalPrompts p = EvalPrompts.fromLines(List.of("a cat", "", "  a dog "), 9);
        assertEquals(List.of(new EvalPrompt("a cat", 9, 0, null), new EvalPrompt("a dog", 9, 1, null)), p.prompts());
    }

    @Test
    void presets() {
        EvalPrompts imagenette = EvalPrompts.preset("imagenette", 1);
        assertEquals(10, imagenette.classes().size());
        assertEquals("an image of a garbage truck", imagenette.prompts().get(5).prompt());
        EvalPrompts artists = EvalPrompts.preset("artists", 1);
        assertTrue(artists.classes().containsAll(ConceptPresets.preset("allartist")));
        assertEquals(ConceptPresets.preset("allartist").size() + 5, artists.classes().size());
        assertThrows(UserError.class, () -> EvalPrompts.preset("nope", 0));
    }
}
