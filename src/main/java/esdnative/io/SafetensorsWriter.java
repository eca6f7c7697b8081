package esdnative.io;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SequencedMap;

/**
 * Writes a safetensors file exactly as the format specifies: 8-byte little-endian header length, the JSON
 * header (optional {@code __metadata__} first, then the tensors in the map's order) padded with spaces to a
 * multiple of 8, then the tensors' bytes contiguous in that same order. Written atomically (see
 * {@link AtomicFile}). float32 data can be stored as F16 or BF16 (round to nearest even, as torch does) or F64.
 *
 * <p>The header needs only dtypes and shapes, so values may also be produced while the file is written
 * ({@link Entry#deferred}): each tensor is then fetched a piece at a time, converted, written and dropped, and a save
 * holds one piece in memory rather than a host copy of every tensor (a training state of SD 1.4 is gigabytes).
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    /**
     * One tensor to write: its stored dtype and shape, and its contents as one of: float32 values (converted to
     * {@code dtype} on write, which must be a floating type), raw little-endian bytes already in {@code dtype}, or
     * float32 values produced when written ({@code values}, converted likewise).
     */
    public record Entry(DType dtype, long[] shape, float[] floats, MemorySegment bytes, Values values) {
        public Entry {
            shape = shape.clone();
            long n = elementCount(shape);
            if ((floats != null ? 1 : 0) + (bytes != null ? 1 : 0) + (values != null ? 1 : 0) != 1) {
                throw new IllegalArgumentException("give exactly one of floats, bytes or deferred values");
            }
            if (bytes == null && !dtype.isFloating()) {
                throw new IllegalArgumentException("float values cannot be stored as " + dtype);
            }
            if (floats != null && floats.length != n) {
                throw new IllegalArgumentException(floats.length + " values for shape " + Arrays.toString(shape));
            }
            if (bytes != null && bytes.byteSize() != n * dtype.bytes()) {
                throw new IllegalArgumentException(bytes.byteSize() + " bytes for " + dtype + " " + Arrays.toString(shape));
            }
        }

        /** float32 values stored as {@code dtype} (F32, F16, BF16 or F64). */
        public static Entry floats(DType dtype, long[] shape, float[] values) {
            return new Entry(dtype, shape, values, null, null);
        }

        /** float32 values stored as {@code dtype} (F32, F16, BF16 or F64). */
        public static Entry floats(DType dtype, int[] shape, float[] values) {
            return floats(dtype, Arrays.stream(shape).asLongStream().toArray(), values);
        }

        /** Raw little-endian bytes already in {@code dtype}, e.g. {@link SafetensorsFile#raw} of another file. */
        public static Entry raw(DType dtype, long[] shape, MemorySegment bytes) {
            return new Entry(dtype, shape, null, bytes, null);
        }

        /**
         * float32 values stored as {@code dtype} (F32, F16, BF16 or F64), fetched from {@code values} only while this
         * tensor is written, a piece at a time (e.g. copied from a device, or checked on the way).
         */
        public static Entry deferred(DType dtype, long[] shape, Values values) {
            return new Entry(dtype, shape, null, null, values);
        }

        @Override
        public long[] shape() { return shape.clone(); }

        long byteSize() {
            return bytes != null ? bytes.byteSize() : elementCount(shape) * dtype.bytes();
        }
    }

    /** Where a deferred entry's values come from. */
    @FunctionalInterface
    public interface Values {
        /** The values of elements {@code [from, from + count)} in row-major order: exactly {@code count} of them. */
        float[] read(long from, int count);
    }

    /** Elements a deferred entry is fetched in at most: 16 MiB of float32 at a time. */
    static final int PIECE = 1 << 22;

    /** Writes {@code entries} (name → entry, in file order) and {@code metadata} (may be empty) to {@code path}. */
    public static void write(Path path, SequencedMap<String, Entry> entries, Map<String, String> metadata) {
        write(path, entries, metadata, PIECE);
    }

    /** {@link #write}, fetching deferred values {@code piece} elements at a time at most. */
    static void write(Path path, SequencedMap<String, Entry> entries, Map<String, String> metadata, int piece) {
        byte[] header = header(entries, metadata);
        AtomicFile.write(path, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(out, len);
            writeFully(out, ByteBuffer.wrap(header));
            for (Map.Entry<String, Entry> e : entries.entrySet()) writeData(out, e.getKey(), e.getValue(), piece);
        });
    }

    /** The JSON header, space-padded to a multiple of 8 bytes. */
    static byte[] header(SequencedMap<String, Entry> entries, Map<String, String> metadata) {
        ObjectNode root = Json.mapper().createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            if (e.getKey().equals("__metadata__")) throw new IllegalArgumentException("tensor name __metadata__ is reserved");
            Entry t = e.getValue();
            ObjectNode node = root.putObject(e.getKey());
            node.put("dtype", t.dtype().safetensorsName());
            ArrayNode shape = node.putArray("shape");
            for (long d : t.shape) shape.add(d);
            long end = offset + t.byteSize();
            node.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = Arrays.copyOf(json, padded);
        Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }

    private static void writeData(FileChannel out, String name, Entry e, int piece) throws IOException {
        if (e.bytes() != null) {
            MemorySegment bytes = e.bytes();
            for (long at = 0; at < bytes.byteSize(); at += 1 << 30) {   // a ByteBuffer holds < 2 GiB
                writeFully(out, bytes.asSlice(at, Math.min(1 << 30, bytes.byteSize() - at)).asByteBuffer());
            }
        } else if (e.floats() != null) {
            writeFloats(out, e.dtype(), e.floats(), e.floats().length);
        } else {
            long n = elementCount(e.shape);
            for (long from = 0; from < n; from += piece) {
                int count = (int) Math.min(piece, n - from);
                float[] values = e.values().read(from, count);
                if (values.length != count) {
                    throw new IllegalStateException(name + ": asked for " + count + " values, got " + values.length);
                }
                writeFloats(out, e.dtype(), values, count);
            }
        }
    }

    /** The first {@code count} values of {@code v} in {@code dtype}, converted in chunks (no second full-size copy). */
    private static void writeFloats(FileChannel out, DType dtype, float[] v, int count) throws IOException {
        int width = dtype.bytes();
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        int chunk = buf.capacity() / width;
        for (int start = 0; start < count; start += chunk) {
            int stop = Math.min(count, start + chunk);
            buf.clear();
            if (dtype == DType.F32) {   // bulk copy, no conversion
                buf.asFloatBuffer().put(v, start, stop - start);
                buf.position(4 * (stop - start));
            } else {
                for (int i = start; i < stop; i++) {
                    switch (dtype) {
                        case F16 -> buf.putShort(Halfs.floatToF16(v[i]));
                        case BF16 -> buf.putShort(Halfs.floatToBf16(v[i]));
                        case F64 -> buf.putDouble(v[i]);
                        default -> throw new IllegalStateException("not a float dtype: " + dtype);
                    }
                }
            }
            buf.flip();
            writeFully(out, buf);
        }
    }

    private static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private static void writeFully(FileChannel out, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) out.write(buf);
    }
}
