package esdnative.model.sdxl;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.esd.TrainMethod;
import esdnative.io.Json;
import esdnative.model.Weights;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import esdnative.testing.TinySdxl;
import esdnative.util.UserError;
import esdnative.checkpoint.CompVisNames;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The original SDXL single file of tiny-sdxl-a (written by diffusers' convert_diffusers_to_original_sdxl.py): every
 * diffusers tensor's key as the fixture's key_map lists it, and the model loaded from it (with the folder's configs
 * and tokenizers) bit-identical to the one loaded from the folder, so every golden holds from both.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SdxlSingleFileTest {
    private static final Path FILE = Fixtures.path("tiny-sdxl-a-single-file.safetensors");
    private final Backend be = new CpuBackend();
    private StableDiffusionXL folder;
    private StableDiffusionXL single;

    @BeforeAll
    void setUp() {
        folder = StableDiffusionXL.loadFolder(be, TinySdxl.model(""));
        single = StableDiffusionXL.loadSingleFile(be, FILE, TinySdxl.model(""));
    }

    @Test
    void namesMatchTheFixturesKeyMap() {
        JsonNode keyMap = Json.tree(Path.of(FILE + ".conversion.json")).path("key_map");
        UNetConfig unet = folder.unet();
        var names = new SdxlSingleFileNames(new CompVisNames.Topology(unet.levels(), 2, new boolean[] {true, false}, 2, 2));
        int checked = 0;
        for (Map.Entry<String, JsonNode> e : keyMap.properties()) {
            String component = e.getKey().substring(0, e.getKey().indexOf('/'));
            String name = e.getKey().substring(component.length() + 1);
            SdxlSingleFileNames.Place place = names.place(component, name);
            if (name.equals("text_model.embeddings.position_ids")) continue; // a buffer, not in the file
            assertNotNull(place, e.getKey());
            assertEquals(e.getValue().asText(), place.key(), e.getKey());
            // and back: the key names this tensor (one of three for a fused in_proj)
            assertTrue(names.toDiffusers(place.key()).contains(new SdxlSingleFileNames.Named(component, name)), e.getKey());
            checked++;
        }
        assertTrue(checked >= 661, checked + " keys checked");
    }

    /** ESD-x's rule on the original names selects the 60 tensors esd_sdxl.py trains (the manifest's list). */
    @Test
    void esdXSelectsWhatTheAuthorsSdxlScriptTrains() {
        UNetConfig unet = folder.unet();
        var names = new SdxlSingleFileNames(new CompVisNames.Topology(unet.levels(), 2, new boolean[] {true, false}, 2, 2));
        String prefix = CompVisNames.Component.UNET.compVisPrefix();
        Set<String> selected = new TreeSet<>();
        for (String name : folder.unetWeights().asMap().keySet()) {
            String original = names.place("unet", name).key().substring(prefix.length());
            if (TrainMethod.XATTN.trains(original)) selected.add(name);
        }
        Set<String> authors = new TreeSet<>();
        Json.tree(TinySdxl.golden("manifest.json")).path("scalars").path("esd_trainable_parameter_names")
                .forEach(n -> authors.add(n.asText()));
        assertEquals(60, authors.size());
        assertEquals(authors, selected);
    }

    @Test
    void singleFileWeightsAreTheFoldersBitForBit() {
        assertSame(folder.unetWeights(), single.unetWeights());
        assertSame(folder.vae().weights(), single.vae().weights());
        assertSame(folder.text().textEncoder().weights(), single.text().textEncoder().weights());
        assertSame(folder.text().textEncoder2().text().weights(), single.text().textEncoder2().text().weights());
        assertSame(folder.text().textEncoder2().projection(), single.text().textEncoder2().projection());
        assertEquals(folder.unet(), single.unet());
    }

    @Test
    void encodePromptFromTheSingleFile() {
        PromptEmbeds cat = single.text().encode("a photo of a cat");
        TinySdxl.assertClose(be, "encode_prompt_prompt_embeds", cat.embeds());
        TinySdxl.assertClose(be, "encode_prompt_pooled_prompt_embeds", cat.pooled());
    }

    @Test
    void withoutConfigsTheSingleFileIsRefusedInOneLine() {
        UserError e = assertThrows(UserError.class, () -> StableDiffusionXL.loadSingleFile(be, FILE, null));
        assertTrue(e.getMessage().contains("needs a diffusers SDXL folder for its configs"), e.getMessage());
        UserError notSdxl = assertThrows(UserError.class, () -> StableDiffusionXL.loadSingleFile(be,
                Fixtures.path("tiny-sd-a-single-file.safetensors"), TinySdxl.model("")));
        assertTrue(notSdxl.getMessage().contains("not an SDXL single file"), notSdxl.getMessage());
    }

    private void assertSame(Weights expected, Weights actual) {
        assertEquals(expected.asMap().keySet(), actual.asMap().keySet());
        for (var e : expected.asMap().entrySet()) {
            assertArrayEquals(be.toHost(e.getValue()), be.toHost(actual.get(e.getKey())), 0f, e.getKey());
        }
    }
}
