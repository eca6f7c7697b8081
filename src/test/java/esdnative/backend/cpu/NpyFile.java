package esdnative.backend.cpu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The fixtures' .npy files (numpy format 1.0, C order, little-endian float32 '&lt;f4' or int64 '&lt;i8'), read
 * as floats: just enough for the op tests that compare against torch's outputs.
 */
final class NpyFile {
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");

    private NpyFile() {}

    static float[] readFloats(Path path) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.get(0) != (byte) 0x93 || buf.get(1) != 'N' || buf.get(6) != 1) {
            throw new IOException(path + ": not a version 1 .npy file");
        }
        int headerLen = buf.getShort(8) & 0xffff;
        String header = new String(buf.array(), 10, headerLen, StandardCharsets.US_ASCII);
        if (header.contains("'fortran_order': True")) throw new IOException(path + ": Fortran order");
        Matcher m = DESCR.matcher(header);
        if (!m.find()) throw new IOException(path + ": no descr in header " + header);
        buf.position(10 + headerLen);
        return switch (m.group(1)) {
            case "<f4" -> {
                float[] out = new float[buf.remaining() / 4];
                buf.asFloatBuffer().get(out);
                yield out;
            }
            case "<i8" -> {
                float[] out = new float[buf.remaining() / 8];
                for (int i = 0; i < out.length; i++) out[i] = buf.getLong();
                yield out;
            }
            default -> throw new IOException(path + ": unsupported dtype " + m.group(1));
        };
    }
}
