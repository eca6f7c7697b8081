package esdnative.model;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.util.UserError;
import esdnative.checkpoint.Layout;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ModelLoaderTest {
    private final Backend be = new CpuBackend();

    @Test
    void singleFileHoldsTheSameModelAsTheFolder() {
        Path folder = Fixtures.path("tiny-sd-a");
        StableDiffusion a = ModelLoader.load(be, folder, null, null);
        // the tiny model's 8 norm groups and 4 text heads are not in any tensor shape: its configs come from --config
        StableDiffusion b = ModelLoader.load(be, Fixtures.path("tiny-sd-a-single-file.safetensors"),
                Fixtures.path("clip-tokenizer"), folder);
        assertEquals(Layout.DIFFUSERS, a.layout());
        assertEquals(Layout.SINGLE_FILE, b.layout());
        assertEquals(a.unet(), b.unet());
        assertEquals(a.vaeScaleFactor(), b.vaeScaleFactor());
        assertEquals(2, a.vaeScaleFactor());
        assertEquals(a.unetWeights().asMap().keySet(), b.unetWeights().asMap().keySet());
        for (String name : a.unetWeights().asMap().keySet()) {
            assertArrayEquals(be.toHost(a.unetWeights().get(name)), be.toHost(b.unetWeights().get(name)), 0f, name);
        }
        int[] ids = a.tokenizer().encodePadded("a photo of a cat");
        assertArrayEquals(ids, b.tokenizer().encodePadded("a photo of a cat"));
        assertArrayEquals(be.toHost(a.textEncoder().forward(ids, 1)), be.toHost(b.textEncoder().forward(ids, 1)), 0f);
    }

    @Test
    void sd14ArchitectureIsInferredFromShapesAlone() {
        Map<String, int[]> shapes = new LinkedHashMap<>(UNet2DConditionModel.parameterShapes(UNetConfig.sd14()));
        assertEquals(UNetConfig.sd14(), SingleFileArchitecture.unet(shapes));
        Map<String, int[]> text = new LinkedHashMap<>();
        ClipTextModel.parameterShapes(ClipTextConfig.vitL14()).forEach((n, s) -> text.put("text_model." + n, s));
        assertEquals(ClipTextConfig.vitL14(), SingleFileArchitecture.text(text, false));
        assertEquals(esdnative.model.vae.VaeConfig.sd(), SingleFileArchitecture.vae(
                esdnative.model.vae.VaeDecoder.parameterShapes(esdnative.model.vae.VaeConfig.sd())));
    }

    @Test
    void tinySingleFileWithoutConfigsSaysWhatIsMissing() {
        // tiny-sd-a's 32/64 channels divide into 32 groups, so shapes alone give a (wrong-grouped: it has 8) SD1 UNet,
        // and the text encoder's hidden 32 gives 1 head where the model has 4: the loader must say so
        Path file = Fixtures.path("tiny-sd-a-single-file.safetensors");
        StableDiffusion[] loaded = new StableDiffusion[1];
        String err = stderrOf(() -> {
            loaded[0] = ModelLoader.load(be, file, Fixtures.path("clip-tokenizer"), null);
            assertNotNull(ModelLoader.loadVae(be, loaded[0], null));
        });
        assertEquals(32, loaded[0].unet().normNumGroups());
        assertEquals(1, loaded[0].textEncoder().config().numAttentionHeads());
        List<String> warnings = err.lines().filter(l -> l.startsWith("warning: tiny-sd-a-single-file.safetensors: ")).toList();
        assertEquals(3, warnings.size(), err);
        assertTrue(warnings.get(0).contains("its UNet has no Stable Diffusion 1.x/2.x shapes"), warnings.get(0));
        assertTrue(warnings.get(0).contains("SD's were assumed: 32 norm groups, attention heads [8, 8], sample size 64;"), warnings.get(0));
        assertTrue(warnings.get(1).contains("its text encoder has no Stable Diffusion 1.x/2.x shapes"), warnings.get(1));
        assertTrue(warnings.get(1).contains("attention heads 1 (64 channels each), activation quick_gelu"), warnings.get(1));
        assertTrue(warnings.get(2).contains("its VAE has no Stable Diffusion 1.x/2.x shapes"), warnings.get(2));
        assertTrue(warnings.get(2).contains("32 norm groups"), warnings.get(2));
        // the core says what gives the real values in its own words; the command names its option (below)
        for (String w : warnings) assertTrue(w.contains("pass a config, a diffusers folder with this model's "), w);
        for (String w : warnings) assertFalse(w.contains("--"), w);
        assertEquals(List.of("UNet", "text encoder", "VAE"), ModelLoader.assumedParts(loaded[0], null));
        assertEquals(List.of(), ModelLoader.assumedParts(loaded[0], Fixtures.path("tiny-sd-a")));

        // with --config nothing is assumed, so nothing is said
        String quiet = stderrOf(() -> ModelLoader.loadVae(be, ModelLoader.load(be, file, Fixtures.path("clip-tokenizer"),
                Fixtures.path("tiny-sd-a")), Fixtures.path("tiny-sd-a")));
        assertFalse(quiet.contains("warning"), quiet);
    }

    @Test
    void theCommandNamesItsOptionForTheAssumedConfig(@TempDir Path tmp) {
        String[] generate = {"generate", "--model", Fixtures.path("tiny-sd-a-single-file.safetensors").toString(),
                "--tokenizer", Fixtures.path("clip-tokenizer").toString(), "--prompt", "a cat", "--steps", "1",
                "--backend", "cpu", "--output", tmp.resolve("cat.png").toString()};
        String err = stderrOf(() -> assertEquals(0, Main.run(generate)));
        assertEquals(3, err.lines().filter(l -> l.startsWith("warning: ") && l.contains("pass a config")).count(), err);
        assertTrue(err.lines().anyMatch(l -> l.equals("hint: --config DIR passes the config of this model's UNet, "
                + "text encoder, VAE: a diffusers folder with its config.json files")), err);
    }

    @Test
    void stableDiffusionShapesNeedNoAssumptions() {
        assertEquals(List.of(), SingleFileArchitecture.assumed(UNetConfig.sd14()));
        assertEquals(List.of(), SingleFileArchitecture.assumed(UNetConfig.sd2()));
        assertEquals(List.of(), SingleFileArchitecture.assumed(ClipTextConfig.vitL14()));
        assertEquals(List.of(), SingleFileArchitecture.assumed(esdnative.model.vae.VaeConfig.sd()));
    }

    private static String stderrOf(Runnable r) {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            r.run();
        } finally {
            System.setErr(saved);
        }
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void missingPathsAreUserErrors() {
        UserError e = assertThrows(UserError.class, () -> ModelLoader.load(be, Path.of("/no/such/model"), null, null));
        assertTrue(e.getMessage().contains("/no/such/model"), e.getMessage());
        UserError t = assertThrows(UserError.class,
                () -> ModelLoader.load(be, Fixtures.path("tiny-sd-a"), Path.of("/no/tokenizer"), null));
        // the core's words; a command puts "--tokenizer: " in front (FlagWordsTest.theCommandNamesTheFlag)
        assertTrue(t.getMessage().startsWith("tokenizer folder /no/tokenizer has no vocab.json"), t.getMessage());
    }
}
