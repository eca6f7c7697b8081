package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/**
 * Named tensors read from a weight file, whatever its format: a {@link SafetensorsFile} or a PyTorch checkpoint
 * ({@link CkptFile}). Loaders that accept both call {@link #open}.
 */
public interface TensorSource extends AutoCloseable {
    Path path();

    /** Tensor names in file order. */
    Set<String> names();

    /** The element type of {@code name} as stored (a UserError if there is no such tensor). */
    DType dtype(String name);

    /** The shape of {@code name} (a UserError if there is no such tensor). */
    long[] shape(String name);

    /** The tensor's elements, row-major, as float32. */
    float[] readFloats(String name);

    @Override
    void close();

    /**
     * Refuses what is not a plain file before reading it: a FIFO or a device would block or never end. A missing
     * path passes (the reader says so).
     */
    static void requireRegularFile(Path path) {
        if (Files.exists(path) && !Files.isRegularFile(path)) {
            throw new UserError(path + ": not a regular file (" + (Files.isDirectory(path) ? "a folder" : "a FIFO, device or socket") + ")");
        }
    }

    /**
     * Opens a safetensors file or a PyTorch checkpoint: by extension (.safetensors; .ckpt .pt .pth .bin), else by
     * content (a safetensors header starts with '{' after its 8-byte length).
     */
    static TensorSource open(Path path) {
        requireRegularFile(path);
        String name = path.getFileName().toString().toLowerCase(java.util.Locale.ROOT);
        if (name.endsWith(".safetensors")) return SafetensorsFile.open(path);
        if (name.endsWith(".ckpt") || name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin")) {
            return CkptFile.open(path);
        }
        byte[] head;
        try (InputStream in = Files.newInputStream(path)) {
            head = in.readNBytes(9);
        } catch (NoSuchFileException e) {
            throw new UserError(path + ": no such file");
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
        return head.length == 9 && head[8] == '{' ? SafetensorsFile.open(path) : CkptFile.open(path);
    }
}
