package esdnative.io;

import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A weight file cut short anywhere (in the header length, the header, the data; a zip's directory, a pickle, a legacy
 * storage) is refused, on opening or at the latest on reading its tensors, with one line naming the file: never another
 * exception. Malformed headers that are not cuts (offsets past the end, overlaps, wrong byte counts) are
 * SafetensorsFileTest's and CkptFileTest's.
 */
class TruncatedInputsTest {
    @TempDir
    Path dir;

    @Test
    void aSafetensorsFileCutAnywhereIsRefused() throws IOException {
        byte[] whole = Files.readAllBytes(Fixtures.path("tiny-sd-a/text_encoder/model.safetensors"));
        long dataStart = 8 + ByteBuffer.wrap(whole).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        long size = whole.length;
        assertRefusedWhenCut(whole, "model.safetensors", 0, 4, 8, 9, dataStart / 2, dataStart - 1, dataStart, dataStart + 1,
                (dataStart + size) / 2, size - 1);
    }

    @Test
    void aCheckpointCutAnywhereIsRefused() throws IOException {
        for (String name : new String[] {"tiny-sd-a.ckpt", "tiny-sd-a-legacy.ckpt", "tiny-sd-a-fp16.ckpt"}) {
            byte[] whole = Files.readAllBytes(Fixtures.path("ckpt/" + name));
            long size = whole.length;
            assertRefusedWhenCut(whole, name, 0, 3, 64, 1000, size / 10, size / 3, size / 2, 2 * size / 3, size - 1000,
                    size - 22, size - 1);   // 22: a zip's end-of-directory record
        }
    }

    /** A command given a cut model says so in one line (exit 2), for either format. */
    @Test
    void aCommandGivenACutModelSaysSoInOneLine() throws IOException {
        for (String fixture : new String[] {"tiny-sd-a-single-file.safetensors", "ckpt/tiny-sd-a.ckpt"}) {
            byte[] whole = Files.readAllBytes(Fixtures.path(fixture));
            Path cut = dir.resolve(Path.of(fixture).getFileName().toString());
            Files.write(cut, Arrays.copyOf(whole, whole.length / 2));
            Cli r = Cli.run("generate", "--model", cut.toString(), "--prompt", "a cat", "--output", dir.resolve("a.png").toString());
            assertEquals(2, r.exit(), r.err());
            String last = r.err().strip().lines().reduce((x, y) -> y).orElse("");
            assertTrue(last.startsWith("esd-native: ") && last.contains(cut.toString()), r.err());
            assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), r.err());
            assertFalse(Files.exists(dir.resolve("a.png")));
        }
    }

    /** Each prefix of {@code whole} of {@code cuts} bytes, written as {@code name}, is refused by one UserError line. */
    private void assertRefusedWhenCut(byte[] whole, String name, long... cuts) throws IOException {
        Path p = dir.resolve(name);
        for (long cut : cuts) {
            Files.write(p, Arrays.copyOf(whole, Math.toIntExact(cut)));
            UserError e = assertThrows(UserError.class, () -> readAll(p), name + " cut at " + cut + " of " + whole.length);
            assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }

    private static void readAll(Path p) {
        try (TensorSource f = TensorSource.open(p)) {
            for (String name : f.names()) f.readFloats(name);
        }
    }
}
