package esdnative.io;

import com.fasterxml.jackson.databind.JsonNode;
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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NpyTest {
    @TempDir
    Path dir;

    /** A hand-made .npy: given version, header dict text (padded with a newline) and data bytes. */
    private Path npy(int major, String dict, byte[] data) throws IOException {
        byte[] header = (dict + "\n").getBytes(StandardCharsets.UTF_8);
        int lengthBytes = major == 1 ? 2 : 4;
        ByteBuffer b = ByteBuffer.allocate(8 + lengthBytes + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        if (lengthBytes == 2) b.putShort((short) header.length); else b.putInt(header.length);
        b.put(header).put(data);
        Path p = dir.resolve("a" + major + ".npy");
        Files.write(p, b.array());
        return p;
    }

    private static byte[] floatBytes(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(x);
        return b.array();
    }

    private static void assertRejected(Path p, String expected) {
        UserError e = assertThrows(UserError.class, () -> Npy.read(p));
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void readsAllHeaderVersions() throws IOException {
        for (int major = 1; major <= 3; major++) {
            NpyArray a = Npy.read(npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }",
                    floatBytes(1.5f, -2f)));
            assertArrayEquals(new int[] {2, 1}, a.shape());
            assertEquals("<f4", a.descr());
            assertArrayEquals(new float[] {1.5f, -2f}, a.floats());
            assertArrayEquals(new double[] {1.5, -2}, a.doubles());
        }
        // Python 2 style: long literals, double quotes, no trailing comma; a 0-d array
        NpyArray scalar = Npy.read(npy(1, "{\"shape\": (), \"fortran_order\": False, \"descr\": \"<f4\"}", floatBytes(7f)));
        assertArrayEquals(new int[] {}, scalar.shape());
        assertArrayEquals(new float[] {7f}, scalar.floats());
        NpyArray longs = Npy.read(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L,), }", floatBytes(3f)));
        assertArrayEquals(new long[] {3}, longs.longs());
    }

    @Test
    void rejectsUnsupportedLayoutsAndTruncation() throws IOException {
        assertRejected(npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", floatBytes(1, 2, 3, 4)),
                "Fortran-order");
        assertRejected(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new byte[8]), "object arrays");
        assertRejected(npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", new byte[4]), "big-endian");
        assertRejected(npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", new byte[2]), "unsupported dtype '<f2'");
        assertRejected(npy(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }", new byte[4]),
                "structured");
        assertRejected(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floatBytes(1, 2)),
                "truncated .npy data");
        assertRejected(npy(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2000000000, 2000000000), }", new byte[8]),
                "truncated .npy data");
        assertRejected(npy(1, "{'descr': '<f4', 'fortran_order': False, }", floatBytes(1)), "no shape");
        assertRejected(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ", floatBytes(1)), "malformed");
        assertRejected(npy(4, "{}", new byte[0]), "unsupported .npy version 4.0");
        Path notNpy = dir.resolve("x.npy");
        Files.writeString(notNpy, "PK\u0003\u0004 this is a zip");
        assertRejected(notNpy, "not a .npy file");
        Path shortHeader = dir.resolve("short.npy");
        Files.write(shortHeader, new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 100, 0, '{'});
        assertRejected(shortHeader, "runs past the end");
        assertRejected(dir.resolve("missing.npy"), "no such file");
    }

    @Test
    void writesWhatItReads() throws IOException {
        Path f = dir.resolve("f.npy"), d = dir.resolve("d.npy"), l = dir.resolve("l.npy"), flat = dir.resolve("flat.npy");
        float[] floats = {0f, -1.25f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NaN, 3f};
        Npy.writeFloats(f, floats, 2, 3);
        Npy.writeDoubles(d, new double[] {Math.PI, -0.0}, 2, 1, 1);
        Npy.writeLongs(l, new long[] {Long.MIN_VALUE, 49407}, 2);
        Npy.writeFloats(flat, new float[] {1, 2, 3});
        NpyArray fa = Npy.read(f), da = Npy.read(d), la = Npy.read(l), flatA = Npy.read(flat);
        assertArrayEquals(new int[] {2, 3}, fa.shape());
        assertArrayEquals(floats, fa.floats());
        assertEquals("<f8", da.descr());
        assertArrayEquals(new int[] {2, 1, 1}, da.shape());
        assertArrayEquals(new double[] {Math.PI, -0.0}, da.doubles());
        assertEquals("<i8", la.descr());
        assertArrayEquals(new long[] {Long.MIN_VALUE, 49407}, la.longs());
        assertArrayEquals(new int[] {3}, flatA.shape());
        // numpy's layout: version 1.0, data aligned to 64 bytes, header ends in a newline
        byte[] bytes = Files.readAllBytes(f);
        int headerLen = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
        assertEquals(0, (10 + headerLen) % 64);
        assertEquals('\n', bytes[10 + headerLen - 1]);
        assertEquals("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                new String(bytes, 10, headerLen, StandardCharsets.ISO_8859_1).strip());
        byte[] flatBytes = Files.readAllBytes(flat);
        assertEquals("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                new String(flatBytes, 10, flatBytes.length - 12 - 10, StandardCharsets.ISO_8859_1).strip());
        assertThrows(IllegalArgumentException.class, () -> Npy.writeFloats(dir.resolve("bad.npy"), new float[5], 2, 3));
        assertFalse(Files.exists(dir.resolve("bad.npy")));
    }

    @Test
    void readsEveryGoldenAsTheManifestDescribes() {
        JsonNode files = Json.tree(Fixtures.golden("manifest.json")).get("files");
        int checked = 0;
        for (Map.Entry<String, JsonNode> e : files.properties()) {
            JsonNode m = e.getValue();
            NpyArray a = Npy.read(Fixtures.golden(m.get("file").textValue()));
            int[] shape = new int[m.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = m.get("shape").get(i).intValue();
            assertArrayEquals(shape, a.shape(), e.getKey());
            assertEquals(Map.of("float32", "<f4", "float64", "<f8", "int64", "<i8").get(m.get("dtype").textValue()),
                    a.descr(), e.getKey());
            if (m.has("f64_file")) {
                // the manifest's float32-vs-float64 error, recomputed from what we read, must agree
                double[] f32 = a.doubles(), f64 = Npy.read(Fixtures.golden(m.get("f64_file").textValue())).doubles();
                double maxErr = 0;
                for (int i = 0; i < f32.length; i++) maxErr = Math.max(maxErr, Math.abs(f32[i] - f64[i]));
                double expected = m.get("f32_vs_f64").get("max_abs_err").doubleValue();
                assertEquals(expected, maxErr, 1e-12 * Math.max(1, expected), e.getKey());
            }
            checked++;
        }
        assertTrue(checked > 50, "only " + checked + " goldens in the manifest");
        // token ids: bos 49406 first, then padded with 49407 after each prompt's length (all from the manifest)
        JsonNode tokens = files.get("tokens_input_ids");
        long[] ids = Npy.read(Fixtures.golden("tokens_input_ids.npy")).longs();
        for (int row = 0; row < 10; row++) {
            int length = Math.min(77, tokens.get("untruncated_lengths_with_bos_eos").get(row).intValue());
            assertEquals(49406, ids[row * 77]);
            for (int i = length; i < 77; i++) assertEquals(49407, ids[row * 77 + i]);
        }
    }
}
