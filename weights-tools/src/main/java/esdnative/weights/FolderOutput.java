package esdnative.weights;

import esdnative.cli.UserError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/** A new output folder written all-or-nothing: filled under a hidden name, then renamed into place. */
final class FolderOutput {
    private FolderOutput() {}

    /** What fills the folder. */
    @FunctionalInterface
    public interface Body {
        void write(Path tmp) throws IOException;
    }

    /** Fills a hidden sibling folder, then renames it to {@code out}; refuses an existing {@code out}. */
    public static void write(Path out, Body body) {
        Path target = out.toAbsolutePath();
        if (Files.exists(target)) throw new UserError(out + ": already exists; give a new folder");
        Path parent = target.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError(out + ": folder " + parent + " does not exist");
        Path tmp = target.resolveSibling("." + target.getFileName() + ".partial");
        try {
            deleteRecursively(tmp);
            Files.createDirectory(tmp);
            body.write(tmp);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UserError(out + ": cannot write: " + e.getMessage(), e);
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
        }
    }
}
