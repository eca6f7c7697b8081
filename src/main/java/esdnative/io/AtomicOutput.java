package esdnative.io;

import esdnative.cli.UserError;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * An output file or folder written all-or-nothing: built under a hidden sibling name, then renamed into place, so
 * a failed or interrupted run leaves no partial output. An existing output is replaced only when allowed, and
 * then removed only after the new one is in place.
 */
public final class AtomicOutput {
    private AtomicOutput() {}

    /** What creates the output (a file or a folder) at the temporary path it is given. */
    @FunctionalInterface
    public interface Body {
        void write(Path tmp) throws IOException;
    }

    /**
     * Writes {@code out} through {@code body}.
     *
     * @param flag    the option that named the output, for messages (e.g. "--output")
     * @param replace whether an existing output may be replaced
     */
    public static void write(Path out, String flag, boolean replace, Body body) {
        Path target = out.toAbsolutePath();
        Path parent = target.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError(flag + ": folder " + parent + " does not exist");
        if (Files.exists(target) && !replace) throw new UserError(flag + ": " + out + " already exists");
        Path tmp = target.resolveSibling("." + target.getFileName() + ".partial");
        Path old = target.resolveSibling("." + target.getFileName() + ".old");
        try {
            deleteRecursively(tmp);
            body.write(tmp);
            if (Files.exists(target)) Files.move(target, old, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            deleteRecursively(old);
        } catch (IOException e) {
            throw new UserError(flag + ": cannot write " + out + ": " + e.getMessage(), e);
        } finally {
            try {
                deleteRecursively(tmp);
            } catch (IOException ignored) {
                // a hidden leftover is replaced by the next run
            }
        }
    }

    private static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
