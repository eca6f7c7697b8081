package esdnative.cli.weights;

import esdnative.checkpoint.ModelWeights;
import esdnative.model.ModelConfig;
import esdnative.model.vae.AutoencoderShapes;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.esd.TrainMethod;
import esdnative.esd.TrainedNames;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.model.sdxl.SdxlConfig;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.testing.Cli;
import esdnative.text.ClipTokenizer;
import esdnative.io.SafetensorsFile;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.util.Rng;
import esdnative.checkpoint.CompVisNames.Component;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class MakeTinyCommandTest {
    @TempDir
    Path dir;

    private static int run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        try {
            System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            return Main.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /** One UNet forward: noise latents [1, 4, 8, 8] at t = 500 under the prompt's embedding. */
    private static float[] forward(Backend be, StableDiffusion m) {
        Tensor latents = be.fromHost(new Rng(7).normal(4 * 8 * 8), 1, 4, 8, 8);
        Tensor context = m.textEncoder().forward(m.tokenizer().encodePadded("a photo of a cat"), 1);
        Tensor eps = new UNet2DConditionModel(m.unet()).predict(be, m.unetWeights(), latents, new float[] {500}, context);
        assertArrayEquals(new int[] {1, 4, 8, 8}, eps.shape());
        return be.toHost(eps);
    }

    @Test
    void sd14TinyLoadsFromEitherLayoutAndRunsTheSameForward() {
        Path single = dir.resolve("tiny.safetensors");
        Path folder = dir.resolve("tiny");
        assertEquals(0, run("weights", "make-tiny", "--config", "sd14-tiny", "--seed", "3", "--layout", "single-file", single.toString()));
        assertEquals(0, run("weights", "make-tiny", "--config", "sd14-tiny", "--seed", "3", "--tokenizer",
                Fixtures.path("clip-tokenizer").toString(), folder.toString()));
        try (Backend be = new CpuBackend()) {
            // the single file has no configs: its architecture comes from the shapes alone
            StableDiffusion a = ModelLoader.load(be, single, Fixtures.path("clip-tokenizer"), null);
            StableDiffusion b = ModelLoader.load(be, folder, null, null);
            float[] fa = forward(be, a);
            for (float v : fa) assertTrue(Float.isFinite(v));
            assertArrayEquals(fa, forward(be, b), 0f);
            assertNotNull(ModelLoader.loadVae(be, a, null));
            assertNotNull(ModelLoader.loadVae(be, b, null));
        }
        // same seed, same values in both layouts; the whole VAE (encoder too) is there
        try (ModelWeights a = ModelWeights.open(single, ModelWeights.Ema.OFF); ModelWeights b = ModelWeights.open(folder, ModelWeights.Ema.OFF)) {
            for (Component c : Component.values()) {
                assertEquals(b.names(c), java.util.Set.copyOf(a.names(c)));
                for (String n : b.names(c)) assertArrayEquals(b.readFloats(c, n), a.readFloats(c, n), 0f, n);
            }
            assertTrue(b.names(Component.VAE).contains("encoder.conv_in.weight"));
        }
    }

    /**
     * SDXL from an SDXL folder's configs: every tensor of the four components the fixture has, with its shape, new
     * random values, and the folder loads as an SDXL model; no SDXL single file, no built-in SDXL without a tokenizer
     * (one line each).
     */
    @Test
    void sdxlFromAFoldersConfigsHasTheFixturesTensorsAndLoads() {
        Path configs = Fixtures.path("tiny-sdxl-a");
        Path out = dir.resolve("xl");
        assertEquals(0, run("weights", "make-tiny", "--config", configs.toString(), "--seed", "3", out.toString()));
        for (String c : List.of("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model", "text_encoder_2/model")) {
            try (SafetensorsFile want = SafetensorsFile.open(configs.resolve(c + ".safetensors"));
                 SafetensorsFile got = SafetensorsFile.open(out.resolve(c + ".safetensors"))) {
                assertEquals(want.names(), got.names(), c);
                for (String n : want.names()) {
                    assertArrayEquals(want.shape(n), got.shape(n), n);
                    assertFalse(Arrays.equals(want.readFloats(n), got.readFloats(n)), n);
                }
            }
        }
        try (Backend be = new CpuBackend()) {
            assertNotNull(StableDiffusionXL.loadFolder(be, out));
        }
        assertEquals(2, run("weights", "make-tiny", "--config", "sdxl-tiny", dir.resolve("a").toString()));
        assertFalse(Files.exists(dir.resolve("a")));
        assertEquals(2, run("weights", "make-tiny", "--config", configs.toString(), "--layout", "single-file", dir.resolve("a.safetensors").toString()));
        assertFalse(Files.exists(dir.resolve("a.safetensors")));
    }

    /**
     * The built-in sdxl-tiny is the tiny-sdxl-a fixture's architecture (made by diffusers): the same configs as our
     * loader reads them, every tensor with the fixture's name and shape, both tokenizers encoding as the fixture's
     * (tokenizer_2 pads with "!"); and `train` runs an iteration on it, changing exactly the tensors esd-x selects.
     */
    @Test
    void sdxlTinyIsTheFixturesArchitectureAndTrains() {
        Path fixture = Fixtures.path("tiny-sdxl-a");
        Path out = dir.resolve("xl");
        assertEquals(0, run("weights", "make-tiny", "--config", "sdxl-tiny", "--seed", "3", "--tokenizer",
                Fixtures.path("clip-tokenizer").toString(), out.toString()));
        assertEquals(SdxlConfig.fromFolder(fixture), SdxlConfig.fromFolder(out));
        for (String c : List.of("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model", "text_encoder_2/model")) {
            try (SafetensorsFile want = SafetensorsFile.open(fixture.resolve(c + ".safetensors"));
                 SafetensorsFile got = SafetensorsFile.open(out.resolve(c + ".safetensors"))) {
                assertEquals(want.names(), got.names(), c);
                for (String n : want.names()) assertArrayEquals(want.shape(n), got.shape(n), n);
            }
        }
        for (String t : List.of("tokenizer", "tokenizer_2")) {
            ClipTokenizer want = ClipTokenizer.load(fixture.resolve(t)), got = ClipTokenizer.load(out.resolve(t));
            assertArrayEquals(want.encodePadded("a photo of a cat"), got.encodePadded("a photo of a cat"), t);
        }
        try (Backend be = new CpuBackend()) {
            StableDiffusionXL xl = StableDiffusionXL.loadFolder(be, out);
            assertTrue(xl.text().forceZerosForEmptyPrompt());
            assertEquals(0.13025f, xl.vae().config().scalingFactor(), "SDXL's latent scale, as the fixture's vae/config.json");
        }

        Path erased = dir.resolve("erased");
        Cli train = Cli.run("train", "--model", out.toString(), "--concept", "a photo of a cat", "--iterations", "1",
                "--ddim-steps", "2", "--backend", "cpu", "--output", erased.toString());
        assertEquals(0, train.exit(), train.err());
        String unet = "unet/diffusion_pytorch_model.safetensors";
        try (SafetensorsFile a = SafetensorsFile.open(out.resolve(unet)); SafetensorsFile b = SafetensorsFile.open(erased.resolve(unet))) {
            var selected = TrainedNames.selector(TrainMethod.XATTN, a.names());
            for (String n : a.names()) assertEquals(selected.test(n), a.raw(n).mismatch(b.raw(n)) != -1, n);
        }
    }

    @Test
    void anyConfigFolderAndSd2TinyLoad() {
        Path fromFixture = dir.resolve("like-a.safetensors");
        assertEquals(0, run("weights", "make-tiny", "--config", Fixtures.path("tiny-sd-a").toString(), "--seed", "1",
                "--layout", "single-file", "--dtype", "fp16", fromFixture.toString()));
        Path sd2 = dir.resolve("sd2");
        assertEquals(0, run("weights", "make-tiny", "--config", "sd2-tiny", "--seed", "1", sd2.toString()));
        try (Backend be = new CpuBackend()) {
            StableDiffusion a = ModelLoader.load(be, fromFixture, Fixtures.path("clip-tokenizer"), Fixtures.path("tiny-sd-a"));
            StableDiffusion reference = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
            assertEquals(reference.unet(), a.unet());
            for (float v : forward(be, a)) assertTrue(Float.isFinite(v));
            StableDiffusion b = ModelLoader.load(be, sd2, Fixtures.path("clip-tokenizer"), null);
            assertTrue(b.unet().useLinearProjection());
            for (float v : forward(be, b)) assertTrue(Float.isFinite(v));
            // SD 2.x single file: the OpenCLIP text layout, loadable with the folder's configs
            Path sd2File = dir.resolve("sd2.safetensors");
            assertEquals(0, run("weights", "make-tiny", "--config", "sd2-tiny", "--seed", "1", "--layout", "single-file", sd2File.toString()));
            try (ModelWeights w = ModelWeights.open(sd2File, ModelWeights.Ema.OFF)) {
                assertTrue(w.openClipText());
                assertEquals(b.textEncoder().config().numHiddenLayers(), ModelLoader.load(be, sd2File,
                        Fixtures.path("clip-tokenizer"), sd2).textEncoder().config().numHiddenLayers());
            }
        }
    }

    @Test
    void fullSizeConfigsHaveTheReferenceParameterCounts() {
        // diffusers/transformers counts of CompVis/stable-diffusion-v1-4: UNet 859,520,964, CLIP ViT-L/14 text
        // 123,060,480, AutoencoderKL 83,653,863 (counted from the configs: nothing is allocated)
        ModelConfig sd14 = ModelConfig.of("sd14");
        assertEquals(859_520_964L, AutoencoderShapes.count(UNet2DConditionModel.parameterShapes(sd14.unet())));
        assertEquals(123_060_480L, AutoencoderShapes.count(esdnative.model.clip.ClipTextModel.parameterShapes(sd14.text())));
        assertEquals(83_653_863L, AutoencoderShapes.count(AutoencoderShapes.all(sd14.vae())));
        // stabilityai/stable-diffusion-xl-base-1.0: UNet 2,567,463,684 (issue #16), text_encoder 123,060,480 (ViT-L),
        // text_encoder_2 694,659,840 (OpenCLIP bigG with its projection), VAE 83,653,863 (SD's architecture)
        SdxlConfig sdxl = SdxlConfig.named("sdxl");
        assertEquals(2_567_463_684L, AutoencoderShapes.count(UNet2DConditionModel.parameterShapes(sdxl.unet())));
        assertEquals(123_060_480L, AutoencoderShapes.count(esdnative.model.clip.ClipTextModel.parameterShapes(sdxl.text())));
        assertEquals(694_659_840L, AutoencoderShapes.count(esdnative.model.clip.ClipTextModel.parameterShapes(sdxl.text2()))
                + AutoencoderShapes.count(ClipTextModelWithProjection.projectionShapes(sdxl.text2(), sdxl.projectionDim())));
        assertEquals(83_653_863L, AutoencoderShapes.count(AutoencoderShapes.all(sdxl.vae())));
    }

    @Test
    void seedsDecideTheValuesAndBadRequestsExitTwo() throws Exception {
        Path a = dir.resolve("a.safetensors"), b = dir.resolve("b.safetensors"), c = dir.resolve("c.safetensors");
        assertEquals(0, run("weights", "make-tiny", "--config", "sd14-tiny", "--seed", "5", "--layout", "single-file", a.toString()));
        assertEquals(0, run("weights", "make-tiny", "--config", "sd14-tiny", "--seed", "5", "--layout", "single-file", b.toString()));
        assertEquals(0, run("weights", "make-tiny", "--config", "sd14-tiny", "--seed", "6", "--layout", "single-file", c.toString()));
        assertEquals(-1, Files.mismatch(a, b));
        assertNotEquals(-1, Files.mismatch(a, c));

        assertEquals(2, run("weights", "make-tiny", "--config", "sd3", dir.resolve("x").toString()));
        assertEquals(2, run("weights", "make-tiny", "--config", "sd14-tiny", a.toString().replace(".safetensors", ".ckpt"), "--layout", "single-file"));
        assertEquals(2, run("weights", "make-tiny", "--config", "sd14-tiny", "--layout", "single-file", a.toString()));
        assertEquals(2, run("weights", "make-tiny", "--config", "sd14-tiny", "--layout", "single-file", "--tokenizer",
                Fixtures.path("clip-tokenizer").toString(), dir.resolve("z.safetensors").toString()));
        assertFalse(Files.exists(dir.resolve("z.safetensors")));
        assertFalse(Files.exists(dir.resolve("x")));
        assertFalse(Files.exists(dir.resolve("y.safetensors")));
    }
}
