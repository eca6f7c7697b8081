package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * An output file or folder written all-or-nothing: built under a hidden sibling name, then renamed into place, so
 * a failed or interrupted run leaves no partial output (the hidden name is always the same, so a killed run's leftover
 * is removed by the next write). An existing output is replaced only when allowed, a folder only when it is a model
 * folder, and then removed only after the new one is in place.
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
     * @param flag    the option that named the output, for messages (e.g. "--output"); null when the caller, not a
     *                command, writes and its command puts the flag in front
     * @param replace whether an existing output may be replaced
     */
    public static void write(Path out, String flag, boolean replace, Body body) {
        Path target = out.toAbsolutePath();
        Path parent = target.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError(about(flag, "folder " + parent + " does not exist"));
        if (Files.exists(target) && !replace) throw new Exists(flag, out);
        checkReplaceable(out, flag);
        Path tmp = AtomicFile.partialOf(target);
        Path old = target.resolveSibling("." + target.getFileName() + ".old");
        try {
            deleteRecursively(tmp);
            body.write(tmp);
            if (Files.exists(target)) Files.move(target, old, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            deleteRecursively(old);
        } catch (IOException e) {
            throw new UserError(about(flag, "cannot write " + out + ": " + e.getMessage()), e);
        } finally {
            try {
                deleteRecursively(tmp);
            } catch (IOException ignored) {
                // a hidden leftover is replaced by the next run
            }
        }
    }

    /**
     * Refuses to replace a folder that is not a model folder (one with model_index.json or a unet/ folder, as every
     * folder we write has): replacing removes the old one with everything in it.
     */
    public static void checkReplaceable(Path out, String flag) {
        if (Files.isDirectory(out) && !Files.isRegularFile(out.resolve("model_index.json")) && !Files.isDirectory(out.resolve("unet"))) {
            throw new UserError(about(flag, out + " is a folder but not a model folder (no model_index.json or unet/); "
                    + "not replacing it, as that would delete everything in it"));
        }
    }

    /** The refusal to replace an output that exists when replacing it was not allowed (a command says how to allow it). */
    public static final class Exists extends UserError {
        /** @param flag as for {@link #write} */
        public Exists(String flag, Path out) {
            super(about(flag, out + " already exists"));
        }
    }

    /** The message, after "{@code flag}: " when there is a flag. */
    private static String about(String flag, String message) {
        return flag == null ? message : flag + ": " + message;
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
