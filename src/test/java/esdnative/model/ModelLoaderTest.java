package esdnative.model;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.UserError;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.LinkedHashMap;
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
        assertEquals(StableDiffusion.Layout.DIFFUSERS, a.layout());
        assertEquals(StableDiffusion.Layout.SINGLE_FILE, b.layout());
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
        assertEquals(ClipTextConfig.vitL14(), SingleFileArchitecture.text(text));
        assertEquals(esdnative.model.vae.VaeConfig.sd(), SingleFileArchitecture.vae(
                esdnative.model.vae.VaeDecoder.parameterShapes(esdnative.model.vae.VaeConfig.sd())));
    }

    @Test
    void tinySingleFileWithoutConfigsSaysWhatIsMissing() {
        // tiny-sd-a's 32/64 channels divide into 32 groups, so shapes alone give a (wrong-grouped) SD1 UNet; what
        // fails is the text encoder: hidden 32 gives 1 head of 32 where SD would have 64-channel heads.
        StableDiffusion m = ModelLoader.load(be, Fixtures.path("tiny-sd-a-single-file.safetensors"),
                Fixtures.path("clip-tokenizer"), null);
        assertEquals(32, m.unet().normNumGroups());
        assertEquals(1, m.textEncoder().config().numAttentionHeads());
    }

    @Test
    void missingPathsAreUserErrors() {
        UserError e = assertThrows(UserError.class, () -> ModelLoader.load(be, Path.of("/no/such/model"), null, null));
        assertTrue(e.getMessage().contains("/no/such/model"), e.getMessage());
        UserError t = assertThrows(UserError.class,
                () -> ModelLoader.load(be, Fixtures.path("tiny-sd-a"), Path.of("/no/tokenizer"), null));
        assertTrue(t.getMessage().startsWith("--tokenizer"), t.getMessage());
    }
}
