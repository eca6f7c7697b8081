package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * numpy's {@code .npy} format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * magic {@code \x93NUMPY}, version byte pair, header length (2 bytes little-endian in 1.0, 4 bytes in 2.0/3.0),
 * a Python dict literal {'descr', 'fortran_order', 'shape'} padded with spaces and a newline, then the data.
 * We read and write C-order little-endian {@code <f4 <f8 <i8 <i4}; anything else is a UserError.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int ALIGN = 64;   // numpy pads so that the data starts at a multiple of 64

    private Npy() {}

    /** Reads {@code path}. */
    public static NpyArray read(Path path) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new UserError(path + ": no such file");
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < MAGIC.length + 2 || !ByteBuffer.wrap(bytes, 0, MAGIC.length).equals(ByteBuffer.wrap(MAGIC))) {
            throw new UserError(path + ": not a .npy file (no \\x93NUMPY magic)");
        }
        int major = bytes[6], minor = bytes[7];
        int lengthBytes = switch (major) {
            case 1 -> 2;
            case 2, 3 -> 4;
            default -> throw new UserError(path + ": unsupported .npy version " + major + "." + minor);
        };
        int fixed = 8 + lengthBytes;
        if (bytes.length < fixed) throw new UserError(path + ": truncated .npy header");
        long headerLen = lengthBytes == 2 ? Short.toUnsignedInt(in.getShort(8)) : Integer.toUnsignedLong(in.getInt(8));
        if (fixed + headerLen > bytes.length) {
            throw new UserError(path + ": .npy header length " + headerLen + " runs past the end of the file");
        }
        String header = new String(bytes, fixed, (int) headerLen,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Map<String, Object> dict = new HeaderParser(path, header).parseDict();

        if (!(dict.get("descr") instanceof String descr)) {
            throw new UserError(path + ": .npy header has no dtype string (structured arrays are not supported): " + header.strip());
        }
        if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
            throw new UserError(path + ": .npy header has no fortran_order: " + header.strip());
        }
        if (!(dict.get("shape") instanceof int[] shape)) {
            throw new UserError(path + ": .npy header has no shape tuple: " + header.strip());
        }
        if (fortran) throw new UserError(path + ": Fortran-order arrays are not supported (save with C order)");
        checkDescr(path, descr);
        long dataBytes = dtypeOf(descr).bytes();
        try {
            for (int d : shape) dataBytes = Math.multiplyExact(dataBytes, d);
        } catch (ArithmeticException e) {
            dataBytes = Long.MAX_VALUE;
        }
        long dataStart = fixed + headerLen;
        if (dataBytes > bytes.length - dataStart) {
            throw new UserError(path + ": truncated .npy data: shape needs " + dataBytes + " bytes, file has "
                    + (bytes.length - dataStart));
        }
        return new NpyArray(shape, descr, ByteBuffer.wrap(bytes, (int) dataStart, (int) dataBytes));
    }

    /** Writes float32 values ({@code <f4}) with {@code shape} (none: 1-d). */
    public static void writeFloats(Path path, float[] values, int... shape) {
        ByteBuffer data = buffer(values.length, 4);
        data.asFloatBuffer().put(values);
        write(path, "<f4", shapeOrFlat(shape, values.length), data);
    }

    /** Writes float64 values ({@code <f8}). */
    public static void writeDoubles(Path path, double[] values, int... shape) {
        ByteBuffer data = buffer(values.length, 8);
        data.asDoubleBuffer().put(values);
        write(path, "<f8", shapeOrFlat(shape, values.length), data);
    }

    /** Writes int64 values ({@code <i8}). */
    public static void writeLongs(Path path, long[] values, int... shape) {
        ByteBuffer data = buffer(values.length, 8);
        data.asLongBuffer().put(values);
        write(path, "<i8", shapeOrFlat(shape, values.length), data);
    }

    static DType dtypeOf(String descr) {
        return switch (descr) {
            case "<f4" -> DType.F32;
            case "<f8" -> DType.F64;
            case "<i8" -> DType.I64;
            case "<i4" -> DType.I32;
            default -> throw new IllegalArgumentException("unsupported npy dtype " + descr);
        };
    }

    private static void checkDescr(Path path, String descr) {
        if (descr.startsWith(">")) {
            throw new UserError(path + ": big-endian dtype '" + descr + "' is not supported (use little-endian)");
        }
        if (descr.contains("O")) throw new UserError(path + ": object arrays are not supported");
        try {
            dtypeOf(descr);
        } catch (IllegalArgumentException e) {
            throw new UserError(path + ": unsupported dtype '" + descr + "' (supported: <f4, <f8, <i8, <i4)");
        }
    }

    private static ByteBuffer buffer(int count, int width) {
        return ByteBuffer.allocate(Math.multiplyExact(count, width)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static int[] shapeOrFlat(int[] shape, int count) {
        if (shape.length == 0) return new int[] {count};
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension " + d);
            n *= d;
        }
        if (n != count) throw new IllegalArgumentException(count + " values for shape " + java.util.Arrays.toString(shape));
        return shape;
    }

    private static void write(Path path, String descr, int[] shape, ByteBuffer data) {
        StringBuilder dims = new StringBuilder();
        for (int i = 0; i < shape.length; i++) dims.append(i == 0 ? "" : ", ").append(shape[i]);
        if (shape.length == 1) dims.append(',');
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;   // magic, version, u16 length, dict, newline
        int total = (unpadded + ALIGN - 1) / ALIGN * ALIGN;
        String header = dict + " ".repeat(total - unpadded) + "\n";
        ByteBuffer head = ByteBuffer.allocate(total).order(ByteOrder.LITTLE_ENDIAN);
        head.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length())
                .put(header.getBytes(StandardCharsets.ISO_8859_1)).flip();
        data.rewind();
        AtomicFile.write(path, out -> {
            while (head.hasRemaining()) out.write(head);
            while (data.hasRemaining()) out.write(data);
        });
    }

    /** Parses the header's Python dict literal: string keys; string, True/False or int-tuple values. */
    private static final class HeaderParser {
        private final Path path;
        private final String s;
        private int at;

        HeaderParser(Path path, String s) {
            this.path = path;
            this.s = s;
        }

        Map<String, Object> parseDict() {
            Map<String, Object> dict = new HashMap<>();
            expect('{');
            while (true) {
                skipSpace();
                if (peek() == '}') break;
                String key = parseString();
                skipSpace();
                expect(':');
                skipSpace();
                dict.put(key, parseValue());
                skipSpace();
                if (peek() == ',') at++;
                else if (peek() != '}') throw fail("expected ',' or '}'");
            }
            return dict;
        }

        private Object parseValue() {
            char c = peek();
            if (c == '\'' || c == '"') return parseString();
            if (s.startsWith("True", at)) { at += 4; return Boolean.TRUE; }
            if (s.startsWith("False", at)) { at += 5; return Boolean.FALSE; }
            if (c == '(') return parseTuple();
            if (c == '[') throw new UserError(path + ": structured (record) arrays are not supported");
            throw fail("unexpected value");
        }

        private int[] parseTuple() {
            expect('(');
            List<Integer> dims = new ArrayList<>();
            while (true) {
                skipSpace();
                if (peek() == ')') { at++; break; }
                int start = at;
                while (at < s.length() && Character.isDigit(s.charAt(at))) at++;
                if (start == at) throw fail("expected a dimension");
                try {
                    dims.add(Integer.parseInt(s.substring(start, at)));
                } catch (NumberFormatException e) {
                    throw fail("dimension too large");
                }
                if (peek() == 'L') at++;   // Python 2 long literals
                skipSpace();
                if (peek() == ',') at++;
                else if (peek() != ')') throw fail("expected ',' or ')'");
            }
            return dims.stream().mapToInt(Integer::intValue).toArray();
        }

        private String parseString() {
            char quote = peek();
            if (quote != '\'' && quote != '"') throw fail("expected a string");
            int end = s.indexOf(quote, at + 1);
            if (end < 0) throw fail("unterminated string");
            String value = s.substring(at + 1, end);
            at = end + 1;
            return value;
        }

        private void expect(char c) {
            skipSpace();
            if (peek() != c) throw fail("expected '" + c + "'");
            at++;
        }

        private char peek() { return at < s.length() ? s.charAt(at) : '\0'; }

        private void skipSpace() { while (at < s.length() && Character.isWhitespace(s.charAt(at))) at++; }

        private UserError fail(String what) {
            return new UserError(path + ": malformed .npy header (" + what + " at character " + at + "): " + s.strip());
        }
    }
}
