package esdnative.cli.weights;

import esdnative.checkpoint.ModelWeights;
import esdnative.cli.Main;
import esdnative.io.CkptFile;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.testing.Fixtures;
import esdnative.checkpoint.CompVisNames.Component;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.io.PrintStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConvertCommandTest {
    @TempDir
    Path dir;

    private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();

    private int run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        stderr.reset();
        try {
            System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(stderr, true, StandardCharsets.UTF_8));
            return Main.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    private static Path componentFile(Path model, Component c) {
        return model.resolve(c.folder()).resolve(c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
    }

    /** Same names, shapes, dtypes and bytes (header order may differ). */
    private static void assertSameTensors(Path expected, Path actual) {
        try (SafetensorsFile e = SafetensorsFile.open(expected); SafetensorsFile a = SafetensorsFile.open(actual)) {
            assertEquals(e.names(), a.names());
            for (TensorInfo t : e.tensors()) {
                TensorInfo u = a.info(t.name());
                assertEquals(t.dtype(), u.dtype(), t.name());
                assertArrayEquals(t.shape(), u.shape(), t.name());
                assertArrayEquals(e.raw(t.name()).toArray(ValueLayout.JAVA_BYTE), a.raw(t.name()).toArray(ValueLayout.JAVA_BYTE), t.name());
            }
        }
    }

    @Test
    void diffusersFolderToSingleFileAndBack() throws IOException {
        Path model = Fixtures.path("tiny-sd-a");
        Path single = dir.resolve("model.safetensors");
        assertEquals(0, run("weights", "convert", model.toString(), single.toString()));
        assertSameTensors(Fixtures.path("tiny-sd-a-single-file.safetensors"), single);

        Path back = dir.resolve("back");
        assertEquals(0, run("weights", "convert", single.toString(), back.toString(), "--config-from", model.toString()));
        for (Component c : Component.values()) assertSameTensors(componentFile(model, c), componentFile(back, c));
        assertEquals(Files.readString(model.resolve("unet/config.json")), Files.readString(back.resolve("unet/config.json")));
        assertTrue(Files.isRegularFile(back.resolve("tokenizer/vocab.json")));
    }

    /**
     * SDXL (README-sdxl.md §2): the folder as the original single file is diffusers' script's file tensor by tensor
     * (names, shapes, dtypes, bytes), and that file with the folder's configs gives back every tensor of every
     * component bit for bit.
     */
    @Test
    void sdxlFolderToSingleFileAndBack() throws IOException {
        Path model = Fixtures.path("tiny-sdxl-a");
        Path single = dir.resolve("xl.safetensors");
        assertEquals(0, run("weights", "convert", model.toString(), single.toString()), stderr.toString());
        assertSameTensors(Fixtures.path("tiny-sdxl-a-single-file.safetensors"), single);

        Path back = dir.resolve("xl-back");
        assertEquals(2, run("weights", "convert", single.toString(), back.toString()));
        assertTrue(stderr.toString().contains("--config"), stderr.toString());
        assertFalse(Files.exists(back));
        assertEquals(0, run("weights", "convert", single.toString(), back.toString(), "--config", model.toString()), stderr.toString());
        for (String c : List.of("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model", "text_encoder_2/model")) {
            assertSameTensors(model.resolve(c + ".safetensors"), back.resolve(c + ".safetensors"));
        }
        assertEquals(Files.readString(model.resolve("model_index.json")), Files.readString(back.resolve("model_index.json")));
        assertTrue(Files.isRegularFile(back.resolve("tokenizer_2/vocab.json")));
    }

    /**
     * SD 2.x (README-clip-sd2.md §3): a folder is written in the OpenCLIP layout, as the fixture's single file holds it
     * bit for bit less what the encoder does not use (its last resblock, text_projection, logit_scale: a folder has
     * none of them, nor has diffusers' conversion script's output), and read back bit-exactly; the fixture's
     * full-tower file gives the folder's tensors.
     */
    @Test
    void sd2FolderToOpenClipSingleFileAndBack() {
        Path model = Fixtures.path("tiny-sd2-a");
        Path fixture = Fixtures.path("tiny-sd2-a-single-file.safetensors");
        Path single = dir.resolve("sd2.safetensors");
        assertEquals(0, run("weights", "convert", model.toString(), single.toString()));
        try (SafetensorsFile full = SafetensorsFile.open(fixture); SafetensorsFile written = SafetensorsFile.open(single)) {
            Set<String> used = new HashSet<>(full.names());
            used.removeIf(n -> n.startsWith("cond_stage_model.model.transformer.resblocks.2.")
                    || n.equals("cond_stage_model.model.text_projection") || n.equals("cond_stage_model.model.logit_scale"));
            assertEquals(used, written.names());
            for (String n : used) assertEquals(-1, full.raw(n).mismatch(written.raw(n)), n);
        }
        Path back = dir.resolve("back");
        assertEquals(0, run("weights", "convert", single.toString(), back.toString()));
        for (Component c : Component.values()) assertSameTensors(componentFile(model, c), componentFile(back, c));
        Path fromFixture = dir.resolve("from-fixture");
        assertEquals(0, run("weights", "convert", fixture.toString(), fromFixture.toString()));
        for (Component c : Component.values()) assertSameTensors(componentFile(model, c), componentFile(fromFixture, c));
    }

    @Test
    void folderToHalfPrecisionEqualsTorchsCast() {
        // tiny-sd-a-fp16.ckpt holds the source tensors cast to float16 by torch (.half(), round to nearest even)
        Path out = dir.resolve("half.safetensors");
        assertEquals(0, run("weights", "convert", "--dtype", "fp16", Fixtures.path("tiny-sd-a").toString(), out.toString()));
        try (CkptFile torchHalf = CkptFile.open(Fixtures.path("ckpt/tiny-sd-a-fp16.ckpt"));
             SafetensorsFile converted = SafetensorsFile.open(out)) {
            assertEquals(torchHalf.names(), converted.names());
            for (TensorInfo t : converted.tensors()) {
                assertEquals(torchHalf.dtype(t.name()), t.dtype(), t.name());
                assertArrayEquals(torchHalf.readFloats(t.name()), converted.readFloats(t.name()), t.name());
            }
        }
        // and the torch-cast checkpoint itself, kept in float16, gives the very same file contents
        Path kept = dir.resolve("kept.safetensors");
        assertEquals(0, run("weights", "convert", Fixtures.path("ckpt/tiny-sd-a-fp16.ckpt").toString(), kept.toString()));
        assertSameTensors(out, kept);
    }

    @Test
    void checkpointGivesItsRawUNetByDefaultAndItsEmaCopyWithEma() {
        // the reference loaders' default (diffusers extract_ema=False, v1-inference.yaml use_ema: False): raw weights
        Path ckpt = Fixtures.path("ckpt/tiny-sd-a.ckpt");
        Path raw = dir.resolve("raw.safetensors");
        assertEquals(0, run("weights", "convert", ckpt.toString(), raw.toString()));
        assertFalse(stderr.toString(StandardCharsets.UTF_8).contains("EMA"));
        assertSameTensors(Fixtures.path("tiny-sd-a-single-file.safetensors"), raw);

        Path withEma = dir.resolve("ema.safetensors");
        assertEquals(0, run("weights", "convert", "--ema", "--to", "single-file", ckpt.toString(), withEma.toString()));
        assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("EMA UNet weights"));
        try (CkptFile source = CkptFile.open(ckpt); SafetensorsFile converted = SafetensorsFile.open(withEma)) {
            for (TensorInfo t : converted.tensors()) {
                String from = t.name().startsWith("model.diffusion_model.") ? ModelWeights.emaName(t.name()) : t.name();
                assertArrayEquals(source.readFloats(from), converted.readFloats(t.name()), t.name());
            }
        }
        assertEquals(2, run("weights", "convert", "--no-ema", ckpt.toString(), dir.resolve("gone.safetensors").toString()));
    }

    @Test
    void componentsSelectsWhatIsWritten() {
        Path out = dir.resolve("unet-vae");
        assertEquals(0, run("weights", "convert", "--components", "unet,vae",
                Fixtures.path("ckpt/tiny-sd-a-legacy.ckpt").toString(), out.toString()));
        assertTrue(Files.isRegularFile(componentFile(out, Component.UNET)));
        assertTrue(Files.isRegularFile(componentFile(out, Component.VAE)));
        assertFalse(Files.exists(out.resolve("text_encoder")));
        assertSameTensors(componentFile(Fixtures.path("tiny-sd-a"), Component.VAE), componentFile(out, Component.VAE));
        assertEquals(2, run("weights", "convert", "--components", "unet,clip", Fixtures.path("tiny-sd-a").toString(),
                dir.resolve("bad.safetensors").toString()));
    }

    @Test
    void checkpointEmaToHalfPrecision() {
        Path out = dir.resolve("ema16.safetensors");
        assertEquals(0, run("weights", "convert", "--ema", "--dtype", "f16", "--to", "compvis",
                Fixtures.path("ckpt/tiny-sd-a.ckpt").toString(), out.toString()));
        try (SafetensorsFile source = SafetensorsFile.open(Fixtures.path("tiny-sd-a-single-file.safetensors"));
             SafetensorsFile converted = SafetensorsFile.open(out)) {
            assertEquals(source.names(), converted.names());
            for (TensorInfo t : source.tensors()) {
                float[] expected = source.readFloats(t.name());
                boolean unet = t.name().startsWith("model.diffusion_model.");
                for (int i = 0; i < expected.length; i++) {
                    float v = unet ? expected[i] + 0.001f : expected[i];   // the manifest: EMA = UNet + 0.001
                    expected[i] = Float.float16ToFloat(Float.floatToFloat16(v));
                }
                assertEquals(esdnative.io.DType.F16, converted.info(t.name()).dtype());
                assertArrayEquals(expected, converted.readFloats(t.name()), t.name());
            }
        }
    }

    @Test
    void badRequestsExitTwoWithoutOutput() {
        Path model = Fixtures.path("tiny-sd-a");
        assertEquals(2, run("weights", "convert", model.toString(), dir.resolve("out.ckpt").toString()));
        assertEquals(2, run("weights", "convert", "--ema", model.toString(), dir.resolve("x.safetensors").toString()));
        assertEquals(2, run("weights", "convert", Fixtures.path("tiny-sd-a/unet/diffusion_pytorch_model.safetensors").toString(),
                dir.resolve("y").toString()));
        assertEquals(2, run("weights", "convert", dir.resolve("missing").toString(), dir.resolve("z.safetensors").toString()));
        assertFalse(Files.exists(dir.resolve("out.ckpt")));
        assertFalse(Files.exists(dir.resolve("x.safetensors")));
        assertFalse(Files.exists(dir.resolve("y")));
        assertEquals(2, run("weights", "convert", "--dtype", "fp8", model.toString(), dir.resolve("w.safetensors").toString()));
        assertEquals(2, run("weights", "convert", "--to", "ckpt", model.toString(), dir.resolve("w.safetensors").toString()));
        assertFalse(Files.exists(dir.resolve("w.safetensors")));
    }
}
