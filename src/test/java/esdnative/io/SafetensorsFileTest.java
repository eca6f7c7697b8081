package esdnative.io;

import esdnative.util.UserError;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsFileTest {
    @TempDir
    Path dir;

    /** 8-byte length, header bytes, then {@code dataBytes} bytes 0, 1, 2, ... */
    private Path file(String name, byte[] header, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        for (int i = 0; i < dataBytes; i++) b.put((byte) i);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private Path file(String header, int dataBytes) throws IOException {
        return file("t.safetensors", header.replace('\'', '"').getBytes(StandardCharsets.UTF_8), dataBytes);
    }

    /** Opening must fail with a one-line UserError that names the file and contains {@code expected}. */
    private static void assertRejected(Path p, String expected) {
        UserError e = assertThrows(UserError.class, () -> SafetensorsFile.open(p).close());
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void readsValidFileInAnyHeaderOrder() throws IOException {
        // header order (b, a) differs from offset order (a at 0, b at 8): the format allows it
        Path p = file("{'__metadata__':{'format':'pt'},"
                + "'b':{'dtype':'I32','shape':[1],'data_offsets':[8,12]},"
                + "'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                + "'empty':{'dtype':'F16','shape':[0,3],'data_offsets':[12,12]}}", 12);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("b", "a", "empty"), f.tensors().stream().map(TensorInfo::name).toList());
            assertEquals(Map.of("format", "pt"), f.metadata());
            TensorInfo a = f.info("a");
            assertEquals(DType.F32, a.dtype());
            assertArrayEquals(new long[] {2}, a.shape());
            assertEquals(0, a.begin());
            assertEquals(8, a.end());
            assertNull(f.info("missing"));
            // bytes 0..7 = 00 01 02 03 | 04 05 06 07 as little-endian floats
            assertArrayEquals(new float[] {Float.intBitsToFloat(0x03020100), Float.intBitsToFloat(0x07060504)},
                    f.readFloats("a"));
            assertArrayEquals(new float[] {0x0b0a0908}, f.readFloats("b"));
            assertEquals(0, f.readFloats("empty").length);
            assertEquals(4, f.raw("b").byteSize());
            assertThrows(UserError.class, () -> f.readFloats("missing"));
        }
    }

    @Test
    void rejectsFileShorterThanEightBytes() throws IOException {
        Path p = dir.resolve("short.safetensors");
        Files.write(p, new byte[] {1, 0, 0, 0, 0});
        assertRejected(p, "shorter than the 8-byte header length");
    }

    @Test
    void rejectsMissingFile() {
        assertRejected(dir.resolve("nope.safetensors"), "no such file");
    }

    @Test
    void rejectsHeaderLengthPastEndOfFile() throws IOException {
        Path p = dir.resolve("past.safetensors");
        ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        Files.write(p, b.array());
        assertRejected(p, "runs past the end");
    }

    @Test
    void rejectsHeaderOverHundredMegabytes() throws IOException {
        Path p = dir.resolve("huge.safetensors");
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(100_000_001L).array());
        assertRejected(p, "exceeds the limit");
        Files.write(p, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array());
        assertRejected(p, "18446744073709551615");
    }

    @Test
    void rejectsHeaderThatIsNotUtf8() throws IOException {
        byte[] header = "{\"a\u00ff\":{}}".getBytes(StandardCharsets.ISO_8859_1);   // 0xff alone is never UTF-8
        assertRejected(file("bad.safetensors", header, 0), "not valid UTF-8");
    }

    @Test
    void rejectsHeaderThatIsNotJsonOrNotAnObject() throws IOException {
        assertRejected(file("{'a': ", 0), "invalid JSON");
        assertRejected(file("{} trailing", 0), "invalid JSON");
        assertRejected(file("[1, 2]", 0), "not a JSON object");
        assertRejected(file("{'a':{'dtype':'F32','shape':[],'data_offsets':[0,4]},"
                + "'a':{'dtype':'F32','shape':[],'data_offsets':[4,8]}}", 8), "Duplicate field");
        assertRejected(file("{'a': 3}", 0), "not a JSON object");
    }

    @Test
    void rejectsEntriesMissingFields() throws IOException {
        assertRejected(file("{'a':{'shape':[1],'data_offsets':[0,4]}}", 4), "missing dtype");
        assertRejected(file("{'a':{'dtype':'F32','data_offsets':[0,4]}}", 4), "missing shape");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1]}}", 4), "missing data_offsets");
    }

    @Test
    void rejectsUnknownDtype() throws IOException {
        assertRejected(file("{'a':{'dtype':'F17','shape':[1],'data_offsets':[0,4]}}", 4), "unsupported dtype \"F17\"");
        assertRejected(file("{'a':{'dtype':'U8','shape':[4],'data_offsets':[0,4]}}", 4), "unsupported dtype \"U8\"");
        assertRejected(file("{'a':{'dtype':4,'shape':[1],'data_offsets':[0,4]}}", 4), "unsupported dtype 4");
    }

    @Test
    void rejectsBadShapes() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[-1],'data_offsets':[0,4]}}", 4), "negative dimension");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1.5],'data_offsets':[0,4]}}", 4), "not a list of integers");
        assertRejected(file("{'a':{'dtype':'F32','shape':7,'data_offsets':[0,4]}}", 4), "not a list of integers");
        assertRejected(file("{'a':{'dtype':'F32','shape':[4294967296,4294967296],'data_offsets':[0,4]}}", 4),
                "too large");
    }

    @Test
    void rejectsShapeThatDisagreesWithOffsets() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,4]}}", 4), "needs 8 bytes but");
        assertRejected(file("{'a':{'dtype':'BF16','shape':[3],'data_offsets':[0,4]}}", 4), "needs 6 bytes but");
    }

    @Test
    void rejectsMalformedOrReversedOffsets() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[0],'data_offsets':[0]}}", 0), "not a pair of integers");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[8,4]}}", 8), "not an increasing pair");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[-4,0]}}", 8), "not an increasing pair");
    }

    @Test
    void rejectsOffsetsOutsideTheDataSection() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 4), "run past the 4-byte data section");
    }

    @Test
    void rejectsOverlappingTensors() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                + "'b':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8), "overlaps");
        // two tensors claiming the same bytes
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                + "'b':{'dtype':'I32','shape':[1],'data_offsets':[0,4]}}", 4), "overlaps");
    }

    @Test
    void rejectsHolesAndUncoveredBytes() throws IOException {
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8), "bytes 0..4");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                + "'b':{'dtype':'F32','shape':[1],'data_offsets':[8,12]}}", 12), "bytes 4..8");
        assertRejected(file("{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 6), "last 2 bytes");
    }

    @Test
    void rejectsMetadataThatIsNotAStringMap() throws IOException {
        assertRejected(file("{'__metadata__':{'format':1}}", 0), "\"format\" is not a string");
        assertRejected(file("{'__metadata__':{'nested':{'x':'y'}}}", 0), "is not a string");
        assertRejected(file("{'__metadata__':['format','pt']}", 0), "__metadata__ is not a map");
    }

    @Test
    void readsFixtureUnetAndAgreesWithGoldenParameters() {
        Path unet = Fixtures.path("tiny-sd-a/unet/diffusion_pytorch_model.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(unet)) {
            assertEquals(304, f.tensors().size());
            assertEquals(Map.of("format", "pt"), f.metadata());
            TensorInfo convIn = f.info("conv_in.weight");
            assertEquals(DType.F32, convIn.dtype());
            assertArrayEquals(new long[] {32, 4, 3, 3}, convIn.shape());
            // the ESD golden recorded these parameters' values from the same model: they must be identical
            for (String name : List.of("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                    "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.bias")) {
                NpyArray golden = Npy.read(Fixtures.golden("esd_param_before__" + name + ".npy"));
                assertArrayEquals(golden.shape(), f.info(name).intShape());
                assertArrayEquals(golden.floats(), f.readFloats(name), name);
            }
        }
    }
}
