package esdnative.model.unet;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A minimal reader for the fixtures' .npy files (format 1.0, C order, '<f4' or '<i8'). */
record Npy(int[] shape, float[] data) {
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    static Npy read(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.get(0) != (byte) 0x93 || buf.get(6) != 1) throw new IOException(file + ": not an .npy v1 file");
        int headerLen = Short.toUnsignedInt(buf.getShort(8));
        String header = new String(buf.array(), 10, headerLen, java.nio.charset.StandardCharsets.US_ASCII);
        if (header.contains("'fortran_order': True")) throw new IOException(file + ": Fortran order");
        Matcher d = DESCR.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !s.find()) throw new IOException(file + ": bad header " + header);
        int[] shape = Arrays.stream(s.group(1).split(",")).map(String::trim).filter(t -> !t.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] data = new float[n];
        buf.position(10 + headerLen);
        switch (d.group(1)) {
            case "<f4" -> buf.asFloatBuffer().get(data);
            case "<i8" -> { for (int i = 0; i < n; i++) data[i] = buf.getLong(); }
            default -> throw new IOException(file + ": dtype " + d.group(1) + " not supported");
        }
        return new Npy(shape, data);
    }
}
