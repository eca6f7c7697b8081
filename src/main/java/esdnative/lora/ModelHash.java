package esdnative.lora;

import esdnative.util.UserError;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.DiffusersFolder;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The base model's identity as LoRA metadata records it (sd-scripts' {@code ss_sd_model_hash} and
 * {@code ss_new_sd_model_hash}): AUTOMATIC1111's legacy hash (SHA-256 of the 64 KiB at offset 1 MiB, first 8 hex
 * digits) and the SHA-256 of the whole file. For a diffusers folder, of its UNet weights file.
 *
 * @param file   the file hashed
 * @param legacy the 8-digit legacy hash
 * @param sha256 the full file's SHA-256, hex
 */
public record ModelHash(Path file, String legacy, String sha256) {
    public static ModelHash of(Path model) {
        Path file = Files.isDirectory(model) ? DiffusersFolder.components(model).get(Component.UNET) : model;
        if (file == null) throw new UserError(model + ": no UNet weights to hash");
        try {
            return new ModelHash(file, legacy(file), full(file));
        } catch (IOException e) {
            throw new UserError(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static String legacy(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file)) {
            ByteBuffer buf = ByteBuffer.allocate(0x10000);
            long at = 0x100000;
            while (buf.hasRemaining() && at < ch.size()) {
                int got = ch.read(buf, at);
                if (got < 0) break;
                at += got;
            }
            buf.flip();
            MessageDigest md = newDigest();
            md.update(buf);
            return HexFormat.of().formatHex(md.digest()).substring(0, 8);
        }
    }

    private static String full(Path file) throws IOException {
        MessageDigest md = newDigest();
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
