package esdnative.io;

import esdnative.util.UserError;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CkptFileTest {
    @TempDir
    Path dir;

    /** Every tensor of the source single file, bit for bit (fp16: rounded to nearest even, as torch's .half()). */
    private static void assertSameAsSingleFile(CkptFile ckpt, boolean half) {
        try (SafetensorsFile source = SafetensorsFile.open(Fixtures.path("tiny-sd-a-single-file.safetensors"))) {
            for (TensorInfo t : source.tensors()) {
                CkptFile.Tensor c = ckpt.info(t.name());
                assertNotNull(c, t.name());
                assertArrayEquals(t.shape(), c.shape(), t.name());
                assertEquals(half ? DType.F16 : DType.F32, c.dtype(), t.name());
                float[] expected = source.readFloats(t.name());
                if (half) {
                    for (int i = 0; i < expected.length; i++) expected[i] = Float.float16ToFloat(Float.floatToFloat16(expected[i]));
                }
                assertArrayEquals(expected, ckpt.readFloats(t.name()), t.name());
            }
        }
    }

    @Test
    void readsZipAndLegacyCheckpointsWithEma() {
        for (String file : List.of("ckpt/tiny-sd-a.ckpt", "ckpt/tiny-sd-a-legacy.ckpt")) {
            try (CkptFile ckpt = CkptFile.open(Fixtures.path(file))) {
                assertSameAsSingleFile(ckpt, false);
                // the manifest: EMA copy of each UNet tensor = tensor + 0.001, keyed by its name without dots
                String unetName = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
                float[] unet = ckpt.readFloats("model.diffusion_model." + unetName);
                float[] ema = ckpt.readFloats("model_ema.diffusion_model" + unetName.replace(".", ""));
                for (int i = 0; i < unet.length; i++) assertEquals(unet[i] + 0.001f, ema[i], 0f, file);
                assertArrayEquals(new float[] {0.9999f}, ckpt.readFloats("model_ema.decay"), file);
                assertEquals(DType.I32, ckpt.info("model_ema.num_updates").dtype());
                assertArrayEquals(new float[] {470000f}, ckpt.readFloats("model_ema.num_updates"), file);
                assertEquals(470000L, ckpt.extras().get("global_step"), file);
                assertTrue(ckpt.names().size() > 464, file);
            }
        }
    }

    @Test
    void readsHalfPrecisionCheckpoint() {
        try (CkptFile ckpt = CkptFile.open(Fixtures.path("ckpt/tiny-sd-a-fp16.ckpt"))) {
            assertEquals(464, ckpt.names().size());
            assertSameAsSingleFile(ckpt, true);
        }
    }

    @Test
    void refusesHostileAndBrokenFiles() {
        Path pwned = Path.of("/tmp/esd-native-pwned");
        Map<String, String> expected = Map.of(
                "reduce-os-system.ckpt", "refusing pickle global posix.system",
                "reduce-builtins-exec.ckpt", "refusing pickle global __builtin__.exec",
                "global-subprocess.ckpt", "refusing pickle global subprocess.Popen",
                "truncated-zip.ckpt", "corrupt or truncated zip",
                "truncated-pickle.ckpt", "pickle data ends early");
        expected.forEach((file, message) -> {
            Path p = Fixtures.path("ckpt/hostile/" + file);
            UserError e = assertThrows(UserError.class, () -> CkptFile.open(p).close(), file);
            assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
            assertTrue(e.getMessage().contains(message), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        });
        assertFalse(Files.exists(pwned), "a hostile pickle ran");
    }

    @Test
    void refusesFilesThatAreNotCheckpoints() throws IOException {
        Path text = dir.resolve("notes.ckpt");
        Files.writeString(text, "hello world");
        UserError e = assertThrows(UserError.class, () -> CkptFile.open(text));
        assertTrue(e.getMessage().contains("not a PyTorch checkpoint"), e.getMessage());
        Path legacyCut = dir.resolve("cut.ckpt");
        byte[] legacy = Files.readAllBytes(Fixtures.path("ckpt/tiny-sd-a-legacy.ckpt"));
        Files.write(legacyCut, java.util.Arrays.copyOf(legacy, legacy.length - 1000));
        e = assertThrows(UserError.class, () -> CkptFile.open(legacyCut));
        assertTrue(e.getMessage().contains("truncated legacy checkpoint"), e.getMessage());
        assertThrows(UserError.class, () -> CkptFile.open(dir.resolve("missing.ckpt")));
    }

    @Test
    void tensorSourceOpensEitherFormat() {
        String name = "first_stage_model.decoder.mid.attn_1.q.weight";
        try (TensorSource ckpt = TensorSource.open(Fixtures.path("ckpt/tiny-sd-a-legacy.ckpt"));
             TensorSource safetensors = TensorSource.open(Fixtures.path("tiny-sd-a-single-file.safetensors"))) {
            assertTrue(ckpt instanceof CkptFile && safetensors instanceof SafetensorsFile);
            assertArrayEquals(safetensors.shape(name), ckpt.shape(name));
            assertEquals(safetensors.dtype(name), ckpt.dtype(name));
            assertArrayEquals(safetensors.readFloats(name), ckpt.readFloats(name));
            assertThrows(UserError.class, () -> ckpt.shape("missing"));
        }
    }

    @Test
    void refusesNegativeShapes() throws IOException {
        // shape (-4, 2): pickled as BININT -4
        UserError e = assertThrows(UserError.class, () -> CkptFile.open(viewCheckpoint("negative.ckpt", 1, "J\u00fc\u00ff\u00ff\u00ff", 1, 2)));
        assertTrue(e.getMessage().contains("negative size"), e.getMessage());
    }

    /** A torch.save-style zip whose state dict holds one 2x2 float view (offset, strides) of a 6-float storage. */
    private Path stridedCheckpoint(String name, int offset, int stride0, int stride1) throws IOException {
        return viewCheckpoint(name, offset, "K\u0002", stride0, stride1);
    }

    /** As {@link #stridedCheckpoint}, with the first dimension pickled as {@code dim0} (an opcode and its argument). */
    private Path viewCheckpoint(String name, int offset, String dim0, int stride0, int stride1) throws IOException {
        java.io.ByteArrayOutputStream pkl = new java.io.ByteArrayOutputStream();
        java.util.function.Consumer<String> op = text -> pkl.writeBytes(text.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        java.util.function.Consumer<String> unicode = text -> {
            byte[] b = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            pkl.write('X');
            pkl.writeBytes(java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
            pkl.writeBytes(b);
        };
        op.accept("\u0080\u0002}(");                            // PROTO 2, EMPTY_DICT, MARK
        unicode.accept("state_dict");
        op.accept("}(");
        unicode.accept("t");
        op.accept("ctorch._utils\n_rebuild_tensor_v2\n((");
        unicode.accept("storage");
        op.accept("ctorch\nFloatStorage\n");
        unicode.accept("0");
        unicode.accept("cpu");
        op.accept("K\u0006tQ");                                   // numel 6, TUPLE, BINPERSID
        op.accept("K" + (char) offset + dim0 + "K\u0002\u0086K" + (char) stride0 + "K" + (char) stride1 + "\u0086");
        op.accept("\u0089ccollections\nOrderedDict\n)RtRuu.");     // False, OrderedDict(), REDUCE, SETITEMS x2, STOP
        Path p = dir.resolve(name);
        try (java.util.zip.ZipOutputStream zip = new java.util.zip.ZipOutputStream(Files.newOutputStream(p))) {
            zip.putNextEntry(new java.util.zip.ZipEntry("archive/data.pkl"));
            zip.write(pkl.toByteArray());
            zip.putNextEntry(new java.util.zip.ZipEntry("archive/data/0"));
            java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(24).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 6; i++) data.putFloat(i);
            zip.write(data.array());
        }
        return p;
    }

    @Test
    void readsStridedViewsAndRejectsViewsPastTheirStorage() throws IOException {
        try (CkptFile f = CkptFile.open(stridedCheckpoint("t.ckpt", 1, 1, 2))) {
            // element [i][j] = storage[1 + i + 2j]: a transposed view
            assertArrayEquals(new long[] {2, 2}, f.shape("t"));
            assertArrayEquals(new float[] {1, 3, 2, 4}, f.readFloats("t"));
        }
        try (CkptFile f = CkptFile.open(stridedCheckpoint("row.ckpt", 2, 2, 1))) {
            assertArrayEquals(new float[] {2, 3, 4, 5}, f.readFloats("t"));   // contiguous fast path
        }
        try (CkptFile f = CkptFile.open(stridedCheckpoint("past.ckpt", 3, 1, 2))) {
            UserError e = assertThrows(UserError.class, () -> f.readFloats("t"));
            assertTrue(e.getMessage().contains("reaches past its storage"), e.getMessage());
        }
    }
}
