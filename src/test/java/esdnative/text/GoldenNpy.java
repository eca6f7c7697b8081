package esdnative.text;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A minimal reader for the golden .npy files (format 1.0/2.0, little-endian f4/f8/i8, C order), for the tests of
 * the text, sched and clip packages until esdnative.io.Npy is on main.
 */
public record GoldenNpy(int[] shape, String dtype, ByteBuffer data) {
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    public static GoldenNpy read(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int major = buf.get(6);
        int headerLen = major == 1 ? Short.toUnsignedInt(buf.getShort(8)) : buf.getInt(8);
        int headerStart = major == 1 ? 10 : 12;
        String header = new String(buf.array(), headerStart, headerLen, StandardCharsets.ISO_8859_1);
        if (header.contains("'fortran_order': True")) throw new IOException(file + ": Fortran order");
        Matcher d = DESCR.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !s.find()) throw new IOException(file + ": bad header " + header);
        int[] shape = Arrays.stream(s.group(1).split(",")).map(String::strip).filter(x -> !x.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
        ByteBuffer data = buf.slice(headerStart + headerLen, buf.capacity() - headerStart - headerLen)
                .order(ByteOrder.LITTLE_ENDIAN);
        return new GoldenNpy(shape, d.group(1), data);
    }

    public static GoldenNpy read(Path dir, String name) throws IOException {
        return read(dir.resolve(name));
    }

    /** The manifest's suggested_atol for a golden file: a fair bound on |java float32 − golden|. */
    public static double suggestedAtol(Path goldenDir, String file) throws IOException {
        var manifest = new com.fasterxml.jackson.databind.ObjectMapper().readTree(goldenDir.resolve("manifest.json").toFile());
        var entry = manifest.path("files").path(file.replace(".npy", "")).path("f32_vs_f64").path("suggested_atol");
        if (!entry.isNumber()) throw new IOException("manifest.json has no suggested_atol for " + file);
        return entry.asDouble();
    }

    public long size() {
        long n = 1;
        for (int x : shape) n *= x;
        return n;
    }

    public float[] floats() {
        float[] out = new float[(int) size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case "<f4" -> data.getFloat(4 * i);
                case "<f8" -> (float) data.getDouble(8 * i);
                default -> throw new IllegalStateException("not a float array: " + dtype);
            };
        }
        return out;
    }

    public double[] doubles() {
        double[] out = new double[(int) size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case "<f4" -> data.getFloat(4 * i);
                case "<f8" -> data.getDouble(8 * i);
                default -> throw new IllegalStateException("not a float array: " + dtype);
            };
        }
        return out;
    }

    public long[] longs() {
        if (!dtype.equals("<i8")) throw new IllegalStateException("not an int64 array: " + dtype);
        long[] out = new long[(int) size()];
        for (int i = 0; i < out.length; i++) out[i] = data.getLong(8 * i);
        return out;
    }
}
