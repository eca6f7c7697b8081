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
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
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

    /**
     * A folder with SDXL base's UNet config over the tiny weights: no longer refused for its size (Weights spans
     * several buffers), but for its shapes, in one line, before the 2.57 billion parameters are allocated.
     */
    @Test
    void aFullSizeSdxlConfigOverTinyWeightsIsRefusedBeforeAllocating(@TempDir Path dir) throws IOException {
        Path model = dir.resolve("sdxl");
        for (String part : new String[] {"", "unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"}) {
            Files.createDirectories(model.resolve(part));
        }
        try (var files = Files.walk(TinySdxl.model(""))) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, model.resolve(TinySdxl.model("").relativize(f).toString()));
            }
        }
        String config = Files.readString(model.resolve("unet/config.json"))
                .replaceAll("\"attention_head_dim\": \\[[^\\]]*\\]", "\"attention_head_dim\": [5, 10, 20]")
                .replaceAll("\"block_out_channels\": \\[[^\\]]*\\]", "\"block_out_channels\": [320, 640, 1280]")
                .replaceAll("\"down_block_types\": \\[[^\\]]*\\]",
                        "\"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\"]")
                .replaceAll("\"up_block_types\": \\[[^\\]]*\\]",
                        "\"up_block_types\": [\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"]")
                .replaceAll("\"transformer_layers_per_block\": \\[[^\\]]*\\]", "\"transformer_layers_per_block\": [1, 2, 10]")
                .replace("\"cross_attention_dim\": 40", "\"cross_attention_dim\": 2048")
                .replace("\"addition_time_embed_dim\": 8", "\"addition_time_embed_dim\": 256")
                .replace("\"projection_class_embeddings_input_dim\": 68", "\"projection_class_embeddings_input_dim\": 2816")
                .replace("\"norm_num_groups\": 8", "\"norm_num_groups\": 32");
        Files.writeString(model.resolve("unet/config.json"), config);
        assertEquals(UNetConfig.sdxl().blockOutChannels(), UNetConfig.fromJson(model.resolve("unet/config.json")).blockOutChannels());
        UserError e = assertThrows(UserError.class, () -> StableDiffusionXL.loadFolder(new CpuBackend(), model));
        assertTrue(e.getMessage().contains("conv_in.weight has shape [24, 4, 3, 3], expected [320, 4, 3, 3]"), e.getMessage());
    }

    @Test
    void anSdFolderIsNotAnSdxlOne() {
        UserError e = assertThrows(UserError.class,
                () -> StableDiffusionXL.loadFolder(new CpuBackend(), Fixtures.path("tiny-sd-a")));
        assertTrue(e.getMessage().contains("StableDiffusionXLPipeline"), e.getMessage());
    }
}
