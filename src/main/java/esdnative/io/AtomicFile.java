package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file all-or-nothing: into a hidden partial file in the same folder ({@code .NAME.partial}, always the
 * same name, so a run that was killed leaves one file that the next write of that name replaces), flushed to disk,
 * then renamed over the target, so a reader never sees a partial file and a failed write leaves no trace. The file
 * gets the permissions of any new file (0666 less the umask: 0644 under umask 022), as other tools' outputs do.
 */
public final class AtomicFile {
    /** bytes of a file name at most (NAME_MAX on Linux and macOS) */
    static final int MAX_NAME_BYTES = 255;

    private AtomicFile() {}

    /** What fills the partial file. */
    @FunctionalInterface
    public interface Body {
        void write(FileChannel out) throws IOException;
    }

    /** Writes {@code path} atomically; a missing folder or an I/O failure is a UserError naming the file. */
    public static void write(Path path, Body body) {
        Path target = path.toAbsolutePath();
        Path dir = target.getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new UserError(path + ": cannot write, folder " + dir + " does not exist");
        }
        Path partial = partialOf(target);
        checkNameLength(partial, path.toString());
        boolean done = false;
        try {
            Files.deleteIfExists(partial);   // a killed run's leftover
            try (FileChannel out = FileChannel.open(partial, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.write(out);
                out.force(true);
            }
            try {
                Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } catch (IOException e) {
            throw new UserError(path + ": cannot write: " + e, e);
        } finally {
            if (!done) {
                try {
                    Files.deleteIfExists(partial);
                } catch (IOException ignored) {
                    // the original failure is what the user needs to see
                }
            }
        }
    }

    /** The hidden sibling a file is written under before it is renamed into place. */
    public static Path partialOf(Path target) {
        return target.toAbsolutePath().resolveSibling("." + target.getFileName() + ".partial");
    }

    /** Refuses a name the file system cannot hold (more than 255 bytes), before any work is done under it. */
    public static void checkNameLength(Path file, String flag) {
        String name = file.getFileName().toString();
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_NAME_BYTES) {
            throw new UserError(flag + ": the name " + (name.length() > 40 ? name.substring(0, 40) + "…" : name) + " is "
                    + bytes + " bytes with what is added to it while writing; file names hold at most " + MAX_NAME_BYTES);
        }
    }
}
