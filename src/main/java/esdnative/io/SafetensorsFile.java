package esdnative.io;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A memory-mapped, validated safetensors file (https://github.com/huggingface/safetensors, "Format"):
 * 8 bytes little-endian header length N, N bytes of UTF-8 JSON header (an object: name → {dtype, shape,
 * data_offsets}, plus an optional {@code __metadata__} string → string map), then the data section.
 *
 * <p>{@link #open} checks everything the reference reader checks: the tensors, sorted by offsets, must tile
 * the data section exactly (no overlaps, no holes, nothing past its end) and each tensor's byte span must equal
 * shape × dtype size. The header's own order need not follow the offsets. Every problem is a one-line
 * {@link UserError} naming the file. Tensors stay mapped until {@link #close}; thread-safe for reading.
 */
public final class SafetensorsFile implements TensorSource {
    /** The reference implementation's limit on the header size. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;   // header order
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file, long dataStart,
                            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps and validates {@code path}. */
    public static SafetensorsFile open(Path path) {
        TensorSource.requireRegularFile(path);
        Arena arena = Arena.ofShared();
        try {
            MemorySegment file;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (NoSuchFileException e) {
                throw new UserError(path + ": no such file");
            } catch (IOException e) {
                throw new UserError(path + ": cannot read: " + e.getMessage(), e);
            }
            long size = file.byteSize();
            if (size < 8) {
                throw new UserError(path + ": not a safetensors file (" + size + " bytes, shorter than the 8-byte header length)");
            }
            long headerLen = file.get(U64_LE, 0);
            if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
                throw new UserError(path + ": safetensors header length " + Long.toUnsignedString(headerLen)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes");
            }
            if (headerLen > size - 8) {
                throw new UserError(path + ": safetensors header length " + headerLen + " runs past the end of the "
                        + size + "-byte file");
            }
            JsonNode header = parseHeader(path, file.asSlice(8, headerLen));
            long dataStart = 8 + headerLen;
            Map<String, String> metadata = Map.of();
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> field : header.properties()) {
                if (field.getKey().equals("__metadata__")) {
                    metadata = parseMetadata(path, field.getValue());
                } else {
                    TensorInfo info = parseEntry(path, field.getKey(), field.getValue());
                    tensors.put(info.name(), info);
                }
            }
            checkLayout(path, tensors.values(), size - dataStart);
            return new SafetensorsFile(path, arena, file, dataStart, Collections.unmodifiableMap(tensors), metadata);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static JsonNode parseHeader(Path path, MemorySegment bytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes.asByteBuffer())
                    .toString();
        } catch (CharacterCodingException e) {
            throw new UserError(path + ": safetensors header is not valid UTF-8");
        }
        JsonNode header;
        try {
            header = Json.mapper().readTree(text);
        } catch (IOException e) {
            throw Json.error(path + ": safetensors header", e);
        }
        if (header == null || !header.isObject()) {
            throw new UserError(path + ": safetensors header is not a JSON object");
        }
        return header;
    }

    private static Map<String, String> parseMetadata(Path path, JsonNode node) {
        if (!node.isObject()) {
            throw new UserError(path + ": __metadata__ is not a map of strings to strings");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new UserError(path + ": __metadata__ value of \"" + e.getKey() + "\" is not a string");
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(metadata);
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode node) {
        String where = path + ": tensor \"" + name + "\"";
        if (!node.isObject()) throw new UserError(where + ": header entry is not a JSON object");
        JsonNode dtypeNode = node.get("dtype");
        JsonNode shapeNode = node.get("shape");
        JsonNode offsetsNode = node.get("data_offsets");
        if (dtypeNode == null) throw new UserError(where + ": missing dtype");
        if (shapeNode == null) throw new UserError(where + ": missing shape");
        if (offsetsNode == null) throw new UserError(where + ": missing data_offsets");
        DType dtype = dtypeNode.isTextual() ? DType.fromSafetensors(dtypeNode.textValue()) : null;
        if (dtype == null) {
            throw new UserError(where + ": unsupported dtype " + dtypeNode + " (supported: F32, F16, BF16, F64, I64, I32)");
        }
        if (!shapeNode.isArray()) throw new UserError(where + ": shape is not a list of integers");
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong()) {
                throw new UserError(where + ": shape " + shapeNode + " is not a list of integers");
            }
            shape[i] = d.longValue();
            if (shape[i] < 0) throw new UserError(where + ": shape " + shapeNode + " has a negative dimension");
        }
        if (!offsetsNode.isArray() || offsetsNode.size() != 2
                || !offsetsNode.get(0).isIntegralNumber() || !offsetsNode.get(0).canConvertToLong()
                || !offsetsNode.get(1).isIntegralNumber() || !offsetsNode.get(1).canConvertToLong()) {
            throw new UserError(where + ": data_offsets " + offsetsNode + " is not a pair of integers");
        }
        long begin = offsetsNode.get(0).longValue();
        long end = offsetsNode.get(1).longValue();
        if (begin < 0 || end < begin) {
            throw new UserError(where + ": data_offsets " + offsetsNode + " are not an increasing pair of non-negative offsets");
        }
        long expected;
        try {
            expected = dtype.bytes();
            for (long d : shape) expected = Math.multiplyExact(expected, d);
        } catch (ArithmeticException e) {
            throw new UserError(where + ": shape " + shapeNode + " is too large");
        }
        if (expected != end - begin) {
            throw new UserError(where + ": shape " + shapeNode + " of " + dtype + " needs " + expected
                    + " bytes but data_offsets " + offsetsNode + " span " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /** The tensors, sorted by offsets, must tile [0, dataBytes) exactly. */
    private static void checkLayout(Path path, Iterable<TensorInfo> infos, long dataBytes) {
        List<TensorInfo> byOffset = new ArrayList<>();
        infos.forEach(byOffset::add);
        byOffset.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expectedBegin = 0;
        TensorInfo previous = null;
        for (TensorInfo t : byOffset) {
            if (t.end() > dataBytes) {
                throw new UserError(path + ": tensor \"" + t.name() + "\": data_offsets [" + t.begin() + ", " + t.end()
                        + "] run past the " + dataBytes + "-byte data section");
            }
            if (t.begin() < expectedBegin) {
                throw new UserError(path + ": tensor \"" + t.name() + "\" overlaps tensor \"" + previous.name()
                        + "\" (bytes " + t.begin() + " < " + expectedBegin + ")");
            }
            if (t.begin() > expectedBegin) {
                throw new UserError(path + ": bytes " + expectedBegin + ".." + t.begin()
                        + " of the data section belong to no tensor (tensors must be contiguous)");
            }
            expectedBegin = t.end();
            previous = t;
        }
        if (expectedBegin != dataBytes) {
            throw new UserError(path + ": the last " + (dataBytes - expectedBegin)
                    + " bytes of the data section belong to no tensor (tensors must cover it exactly)");
        }
    }

    @Override
    public Path path() { return path; }

    /** The tensors in header order. */
    public List<TensorInfo> tensors() { return List.copyOf(tensors.values()); }

    /** The tensor names, in header order. */
    @Override
    public Set<String> names() { return tensors.keySet(); }

    @Override
    public DType dtype(String name) { return require(name).dtype(); }

    @Override
    public long[] shape(String name) { return require(name).shape(); }

    /** The entry of {@code name}, or null if there is none. */
    public TensorInfo info(String name) { return tensors.get(name); }

    /** The {@code __metadata__} map (empty if absent), in header order. */
    public Map<String, String> metadata() { return metadata; }

    /** The tensor's bytes as stored (little-endian), valid until {@link #close}. */
    public MemorySegment raw(String name) {
        TensorInfo t = require(name);
        return file.asSlice(dataStart + t.begin(), t.byteSize());
    }

    /** The tensor converted to float32 (F16/BF16 exactly, F64 rounded, integers by value). */
    @Override
    public float[] readFloats(String name) {
        TensorInfo t = require(name);
        long n = t.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UserError(path + ": tensor \"" + name + "\" has " + n + " elements, too many for one array");
        }
        float[] out = new float[(int) n];
        MemorySegment src = raw(name);
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(src, F32_LE, 0, out, 0, out.length);
            case F16 -> { for (int i = 0; i < out.length; i++) out[i] = Halfs.f16ToFloat(src.getAtIndex(I16_LE, i)); }
            case BF16 -> { for (int i = 0; i < out.length; i++) out[i] = Halfs.bf16ToFloat(src.getAtIndex(I16_LE, i)); }
            case F64 -> { for (int i = 0; i < out.length; i++) out[i] = (float) src.getAtIndex(F64_LE, i); }
            case I64 -> { for (int i = 0; i < out.length; i++) out[i] = (float) src.getAtIndex(U64_LE, i); }
            case I32 -> { for (int i = 0; i < out.length; i++) out[i] = (float) src.getAtIndex(I32_LE, i); }
        }
        return out;
    }

    private TensorInfo require(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new UserError(path + ": no tensor named \"" + name + "\"");
        return t;
    }

    /** Unmaps the file; segments from {@link #raw} become invalid. */
    @Override
    public void close() { arena.close(); }

    @Override
    public String toString() { return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]"; }
}
