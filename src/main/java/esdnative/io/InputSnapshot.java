package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What an input file or folder was when it was loaded: the size and modification time of every file in it
 * (through symbolic links). Outputs copy untouched tensors from the input at write time, so a long run checks that
 * its input is still the same before writing, instead of mixing two models into one file.
 */
public final class InputSnapshot {
    private final Path root;
    private final Map<String, String> files;

    private InputSnapshot(Path root, Map<String, String> files) {
        this.root = root;
        this.files = files;
    }

    public static InputSnapshot of(Path input) {
        return new InputSnapshot(input, describe(input));
    }

    /**
     * @param flag  the option that named the input
     * @param still what the user still has, for the message (e.g. where the trained state was saved)
     * @throws UserError naming the first file that changed, appeared or went missing
     */
    public void verifyUnchanged(String flag, String still) {
        Map<String, String> now;
        try {
            now = describe(root);
        } catch (UserError e) {
            throw new UserError(flag + ": " + root + " cannot be read any more (" + e.getMessage() + "); " + still, e);
        }
        if (now.equals(files)) return;
        String changed = files.keySet().stream().filter(f -> !files.get(f).equals(now.get(f))).findFirst()
                .orElseGet(() -> now.keySet().stream().filter(f -> !files.containsKey(f)).findFirst().orElse(""));
        String what = !now.containsKey(changed) ? "was removed" : !files.containsKey(changed) ? "appeared" : "was modified";
        throw new UserError(flag + ": " + root.resolve(changed) + " " + what + " since it was loaded; not writing an output "
                + "that would mix two models. " + still);
    }

    /** relative path → "size mtime" of every regular file */
    private static Map<String, String> describe(Path input) {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> all = Files.walk(input, FileVisitOption.FOLLOW_LINKS)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                if (a.isRegularFile()) files.put(input.relativize(p).toString(), a.size() + " " + a.lastModifiedTime());
            }
        } catch (IOException | UncheckedIOException e) {
            throw new UserError(input + ": " + e.getMessage(), e);
        }
        return files;
    }
}
