package esdnative.io;

import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Outputs: permissions of any new file, one deterministic partial name, the lock that keeps two runs apart. */
class AtomicOutputTest {
    @Test
    void filesGetTheUmasksPermissionsLikeAnyNewFile(@TempDir Path dir) throws IOException {
        Path plain = Files.createFile(dir.resolve("plain"));   // what the umask gives a new file (0644 under 022)
        Path written = dir.resolve("written.bin");
        AtomicFile.write(written, out -> out.write(ByteBuffer.wrap(new byte[] {1, 2, 3})));
        assertEquals(PosixFilePermissions.toString(Files.getPosixFilePermissions(plain)),
                PosixFilePermissions.toString(Files.getPosixFilePermissions(written)));
        Path folder = dir.resolve("folder");
        AtomicOutput.write(folder, "--output", false, tmp -> Files.createDirectory(tmp).resolve("f"));
        assertEquals(PosixFilePermissions.toString(Files.getPosixFilePermissions(Files.createDirectory(dir.resolve("mk")))),
                PosixFilePermissions.toString(Files.getPosixFilePermissions(folder)));
    }

    @Test
    void aKilledWritesLeftoverIsReplacedAndAFailedWriteLeavesNothing(@TempDir Path dir) throws IOException {
        Path target = dir.resolve("model.safetensors");
        Path leftover = AtomicFile.partialOf(target);
        assertEquals(".model.safetensors.partial", leftover.getFileName().toString());
        Files.writeString(leftover, "what a killed run left");
        AtomicFile.write(target, out -> out.write(ByteBuffer.wrap("new".getBytes())));
        assertEquals("new", Files.readString(target));
        assertEquals(List.of(target), list(dir), "the leftover is gone");

        assertThrows(UserError.class, () -> AtomicFile.write(dir.resolve("failed"), out -> {
            out.write(ByteBuffer.wrap("half".getBytes()));
            throw new IOException("disk full");
        }));
        assertEquals(List.of(target), list(dir), "a failed write leaves no file");
    }

    @Test
    void aSecondWriterRefusesUntilTheFirstIsDone(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("o");
        try (OutputLock first = OutputLock.acquire(out, "--output")) {
            UserError e = assertThrows(UserError.class, () -> OutputLock.acquire(out, "--output"));
            assertTrue(e.getMessage().contains("being written by another run"), e.getMessage());
        }
        assertEquals(List.of(), list(dir), "the lock file is removed with the lock");
        try (OutputLock again = OutputLock.acquire(out, "--output")) {
            assertNotNull(again);
        }
    }

    @Test
    void overLongNamesAndMissingFoldersAreRefusedUpFront(@TempDir Path dir) {
        UserError e = assertThrows(UserError.class, () -> OutputLock.acquire(dir.resolve("x".repeat(240)), "--output"));
        assertTrue(e.getMessage().contains("at most 255"), e.getMessage());
        assertThrows(UserError.class, () -> OutputLock.acquire(dir.resolve("missing/o"), "--output"));
    }

    @Test
    void aFolderThatIsNoModelIsNeverReplaced(@TempDir Path dir) throws IOException {
        Path notAModel = Files.createDirectory(dir.resolve("photos"));
        Files.writeString(notAModel.resolve("holiday.jpg"), "precious");
        UserError e = assertThrows(UserError.class,
                () -> AtomicOutput.write(notAModel, "--output", true, tmp -> Files.writeString(tmp, "x")));
        assertTrue(e.getMessage().contains("not a model folder"), e.getMessage());
        assertEquals("precious", Files.readString(notAModel.resolve("holiday.jpg")));

        Path model = Files.createDirectories(dir.resolve("model/unet"));
        AtomicOutput.write(model.getParent(), "--output", true, tmp -> Files.writeString(tmp, "replaced"));
        assertEquals("replaced", Files.readString(model.getParent()));
    }

    private static List<Path> list(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }
}
