package esdnative.model.sdxl;

import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import esdnative.testing.TinySdxl;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SDXL's sizes from its configs alone, nothing allocated: the full UNet (2,567,463,684 parameters, the count of
 * stabilityai/stable-diffusion-xl-base-1.0's unet, beyond one Java array) and text_encoder_2 (OpenCLIP bigG with
 * its projection); the tiny fixture's text encoders as README-sdxl.md counts them; and the refusals around SDXL.
 */
class SdxlSizesTest {

    @Test
    void fullSdxlUNetParameterCount() {
        SequencedMap<String, int[]> shapes = UNet2DConditionModel.parameterShapes(UNetConfig.sdxl());
        assertEquals(2_567_463_684L, Weights.elementCount(shapes));
        assertTrue(Weights.elementCount(shapes) > Integer.MAX_VALUE);
    }

    @Test
    void fullSdxlTextEncoder2ParameterCount() {
        // OpenCLIP ViT-bigG/14's text tower as SDXL's text_encoder_2/config.json describes it
        ClipTextConfig bigG = new ClipTextConfig(49408, 1280, 5120, 32, 20, 77, "gelu", 1e-5f);
        long count = Weights.elementCount(ClipTextModel.parameterShapes(bigG))
                + Weights.elementCount(ClipTextModelWithProjection.projectionShapes(bigG, 1280));
        assertEquals(694_659_840L, count);
    }

    @Test
    void tinyTextEncodersMatchTheReadme() {
        ClipTextConfig c1 = ClipTextConfig.read(TinySdxl.model("text_encoder/config.json"));
        ClipTextConfig c2 = ClipTextConfig.read(TinySdxl.model("text_encoder_2/config.json"));
        assertEquals(796_570, Weights.elementCount(ClipTextModel.parameterShapes(c1)));
        assertEquals(1_203_519, Weights.elementCount(ClipTextModel.parameterShapes(c2))
                + Weights.elementCount(ClipTextModelWithProjection.projectionShapes(c2, 20)));
    }

    @Test
    void theSdLoaderRefusesSdxlInOneLine() {
        for (var model : new Path[] {TinySdxl.model(""), Fixtures.path("tiny-sdxl-a-single-file.safetensors")}) {
            UserError e = assertThrows(UserError.class,
                    () -> ModelLoader.load(new CpuBackend(), model, Fixtures.path("clip-tokenizer"), null));
            assertTrue(e.getMessage().contains("Stable Diffusion XL"), e.getMessage());
        }
    }

    @Test
    void anSdFolderIsNotAnSdxlOne() {
        UserError e = assertThrows(UserError.class,
                () -> StableDiffusionXL.loadFolder(new CpuBackend(), Fixtures.path("tiny-sd-a")));
        assertTrue(e.getMessage().contains("StableDiffusionXLPipeline"), e.getMessage());
    }
}
