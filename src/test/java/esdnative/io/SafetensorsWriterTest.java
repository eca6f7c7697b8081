package esdnative.io;

import esdnative.testing.Fixtures;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsWriterTest {
    @TempDir
    Path dir;

    /** Values that exercise rounding: random magnitudes, exact ties, subnormals, overflow, signed zero, inf. */
    private static float[] probeValues() {
        List<Float> v = new ArrayList<>(List.of(0f, -0f, 1f, -1f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MAX_VALUE,
                -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                1f + 0x1p-8f, 1f + 3 * 0x1p-8f, 1f + 0x1p-11f, 1f + 3 * 0x1p-11f,   // bf16 and f16 ties
                65504f, 65519.99f, 65520f, 1e-8f, 6e-8f, 3e-8f, 2.98e-8f, 5.96e-8f, 1e-5f, 6.1e-5f, 3.4e38f));
        Random r = new Random(42);
        for (int i = 0; i < 4000; i++) v.add(Float.intBitsToFloat(r.nextInt()));   // every exponent
        for (int i = 0; i < 4000; i++) v.add((float) r.nextGaussian() * (float) Math.pow(10, r.nextInt(12) - 8));
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i);
        return out;
    }

    // --- independent references for the narrowing conversions: nearest representable value, ties to even ---

    /** The value of binary16 bits, decoded by formula. */
    private static double halfValue(int bits) {
        int exp = (bits >> 10) & 0x1f, man = bits & 0x3ff;
        double mag = exp == 0 ? man * 0x1p-24 : (1024 + man) * Math.pow(2, exp - 25);
        return (bits & 0x8000) != 0 ? -mag : mag;
    }

    /** Every finite non-negative binary16 value, ascending with its bits. */
    private static final double[] HALVES = java.util.stream.IntStream.rangeClosed(0, 0x7bff)
            .mapToDouble(SafetensorsWriterTest::halfValue).toArray();

    /** float → the binary16 value torch would store, by search over all finite halves (as a double). */
    private static double expectedF16(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) return x;
        double a = Math.abs((double) x);
        int best = Arrays.binarySearch(HALVES, a);
        if (best < 0) {
            int above = -best - 1;   // HALVES[above - 1] < a < HALVES[above]
            if (above == HALVES.length) {
                best = HALVES.length - 1;
            } else {
                double dBelow = a - HALVES[above - 1], dAbove = HALVES[above] - a;
                best = dBelow < dAbove || (dBelow == dAbove && ((above - 1) & 1) == 0) ? above - 1 : above;
            }
        }
        double mag = a >= 65520.0 ? Double.POSITIVE_INFINITY : HALVES[best];   // 65520 = halfway to 2^16
        return Math.copySign(mag, x);
    }

    /** float → the bfloat16 value torch would store, choosing between the two neighbours by exact distance. */
    private static double expectedBf16(float x) {
        if (Float.isNaN(x) || Float.isInfinite(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int lower = bits & 0xffff0000;   // toward zero
        int upper = lower + 0x10000;     // away from zero (may be inf)
        double a = Math.abs((double) x);
        double lo = Math.abs((double) Float.intBitsToFloat(lower));
        double hi = (upper & 0x7fffffff) == 0x7f800000 ? 0x1p128 : Math.abs((double) Float.intBitsToFloat(upper));
        boolean up = a - lo > hi - a || (a - lo == hi - a && (lower & 0x10000) != 0);
        double mag = up ? ((upper & 0x7fffffff) == 0x7f800000 ? Double.POSITIVE_INFINITY : hi) : lo;
        return Math.copySign(mag, x);
    }

    @Test
    void narrowingMatchesIndependentRoundToNearestEven() {
        float[] values = probeValues();
        for (float x : values) {
            assertEquals(expectedBf16(x), (double) Halfs.bf16ToFloat(Halfs.floatToBf16(x)), 0.0, "bf16 of " + x);
        }
        for (float x : values) {
            assertEquals(expectedF16(x), (double) Halfs.f16ToFloat(Halfs.floatToF16(x)), 0.0, "f16 of " + x);
        }
        assertTrue(Float.isNaN(Halfs.bf16ToFloat(Halfs.floatToBf16(Float.NaN))));
        assertTrue(Float.isNaN(Halfs.f16ToFloat(Halfs.floatToF16(Float.NaN))));
        // a NaN whose payload sits only in the low bits must not become inf
        assertTrue(Float.isNaN(Halfs.bf16ToFloat(Halfs.floatToBf16(Float.intBitsToFloat(0x7f800001)))));
    }

    @Test
    void roundTripsEveryDtypeWithMetadata() throws IOException {
        float[] values = probeValues();
        long[] longs = {Long.MIN_VALUE, -1, 0, 1, 49406, Long.MAX_VALUE};
        int[] ints = {Integer.MIN_VALUE, -7, 0, 3, Integer.MAX_VALUE, 12};
        ByteBuffer longBytes = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        for (long l : longs) longBytes.putLong(l);
        ByteBuffer intBytes = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (int i : ints) intBytes.putInt(i);

        SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
        entries.put("f32", SafetensorsWriter.Entry.floats(DType.F32, new long[] {values.length}, values));
        entries.put("f16", SafetensorsWriter.Entry.floats(DType.F16, new long[] {values.length}, values));
        entries.put("bf16", SafetensorsWriter.Entry.floats(DType.BF16, new int[] {values.length}, values));
        entries.put("f64", SafetensorsWriter.Entry.floats(DType.F64, new long[] {values.length}, values));
        entries.put("scalar", SafetensorsWriter.Entry.floats(DType.F32, new long[] {}, new float[] {2.5f}));
        entries.put("empty", SafetensorsWriter.Entry.floats(DType.F16, new long[] {0, 4}, new float[0]));
        entries.put("i64", SafetensorsWriter.Entry.raw(DType.I64, new long[] {2, 3}, MemorySegment.ofArray(longBytes.array())));
        entries.put("i32", SafetensorsWriter.Entry.raw(DType.I32, new long[] {3, 2}, MemorySegment.ofArray(intBytes.array())));
        Path p = dir.resolve("out.safetensors");
        SafetensorsWriter.write(p, entries, Map.of("format", "pt", "note", "ünïcode"));

        // layout per spec: header length, JSON padded with spaces to a multiple of 8, data in header order
        byte[] bytes = Files.readAllBytes(p);
        long headerLen = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, headerLen % 8);
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":"), header);
        assertTrue(header.matches("(?s)\\{.*\\} *"), header);
        assertEquals(List.of("out.safetensors"), listing());   // no temp file left behind

        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.copyOf(entries.keySet()), List.copyOf(f.names()));
            assertEquals(Map.of("format", "pt", "note", "ünïcode"), f.metadata());
            long offset = 0;
            for (TensorInfo t : f.tensors()) {   // contiguous in header order
                assertEquals(offset, t.begin(), t.name());
                offset = t.end();
            }
            assertEquals(bytes.length - 8 - headerLen, offset);
            assertArrayEquals(values, f.readFloats("f32"));
            float[] f16 = f.readFloats("f16"), bf16 = f.readFloats("bf16"), f64 = f.readFloats("f64");
            for (int i = 0; i < values.length; i++) {
                assertEquals(expectedBf16(values[i]), (double) bf16[i], 0.0, "bf16 of " + values[i]);
                assertEquals(values[i], f64[i]);
            }
            for (int i = 0; i < values.length; i++) assertEquals(expectedF16(values[i]), (double) f16[i], 0.0, "f16 of " + values[i]);
            assertEquals(DType.F64, f.info("f64").dtype());
            assertEquals(8L * values.length, f.info("f64").byteSize());
            assertArrayEquals(new float[] {2.5f}, f.readFloats("scalar"));
            assertArrayEquals(new long[] {}, f.info("scalar").shape());
            assertArrayEquals(new long[] {0, 4}, f.info("empty").shape());
            float[] asFloats = new float[longs.length];
            for (int i = 0; i < longs.length; i++) asFloats[i] = (float) longs[i];
            assertArrayEquals(asFloats, f.readFloats("i64"));
            assertArrayEquals(longBytes.array(), f.raw("i64").toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            for (int i = 0; i < ints.length; i++) asFloats[i] = (float) ints[i];
            assertArrayEquals(asFloats, f.readFloats("i32"));
        }
    }

    @Test
    void copiesRawTensorsFromAnotherFile() throws IOException {
        SequencedMap<String, SafetensorsWriter.Entry> first = new LinkedHashMap<>();
        first.put("w", SafetensorsWriter.Entry.floats(DType.BF16, new long[] {2, 2}, new float[] {1.5f, -2f, 3.25f, 0.1f}));
        Path a = dir.resolve("a.safetensors"), b = dir.resolve("b.safetensors");
        SafetensorsWriter.write(a, first, Map.of());
        try (SafetensorsFile f = SafetensorsFile.open(a)) {
            assertEquals(Map.of(), f.metadata());
            SequencedMap<String, SafetensorsWriter.Entry> copy = new LinkedHashMap<>();
            copy.put("w", SafetensorsWriter.Entry.raw(DType.BF16, f.info("w").shape(), f.raw("w")));
            SafetensorsWriter.write(b, copy, Map.of());
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    /** Every kind of entry: float values in each float dtype (rounding probes), a scalar, an empty tensor, raw ints. */
    private static SequencedMap<String, SafetensorsWriter.Entry> everyKind(boolean deferFloats) {
        float[] values = probeValues();
        ByteBuffer longBytes = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
        for (long l : new long[] {Long.MIN_VALUE, -1, 0, 1, 49406, Long.MAX_VALUE}) longBytes.putLong(l);
        SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
        for (DType d : List.of(DType.F32, DType.F16, DType.BF16, DType.F64)) {
            entries.put(d.safetensorsName(), floatEntry(d, new long[] {values.length}, values, deferFloats));
        }
        entries.put("scalar", floatEntry(DType.F32, new long[] {}, new float[] {2.5f}, deferFloats));
        entries.put("empty", floatEntry(DType.F16, new long[] {0, 4}, new float[0], deferFloats));
        entries.put("i64", SafetensorsWriter.Entry.raw(DType.I64, new long[] {2, 3}, MemorySegment.ofArray(longBytes.array())));
        return entries;
    }

    /** {@code values} as an entry, given at once or produced piece by piece (each piece a fresh copy). */
    private static SafetensorsWriter.Entry floatEntry(DType dtype, long[] shape, float[] values, boolean deferred) {
        return deferred ? SafetensorsWriter.Entry.deferred(dtype, shape, (from, count) -> Arrays.copyOfRange(values, (int) from, (int) from + count))
                : SafetensorsWriter.Entry.floats(dtype, shape, values);
    }

    @Test
    void deferredEntriesWriteTheSameBytesAsValuesGivenAtOnce() throws IOException {
        Path atOnce = dir.resolve("at-once.safetensors"), inPieces = dir.resolve("in-pieces.safetensors");
        SafetensorsWriter.write(atOnce, everyKind(false), Map.of("format", "pt"));
        for (int piece : new int[] {1, 7, 1000, SafetensorsWriter.PIECE}) {   // pieces that cut tensors and conversion chunks
            SafetensorsWriter.write(inPieces, everyKind(true), Map.of("format", "pt"), piece);
            assertArrayEquals(Files.readAllBytes(atOnce), Files.readAllBytes(inPieces), "pieces of " + piece);
        }
    }

    /** A file written by Python's safetensors, rewritten from its values (fetched in small pieces): the same bytes. */
    @Test
    void rewritesAReferenceFileByteForByte() throws IOException {
        Path reference = Fixtures.path("tiny-sd-a/unet/diffusion_pytorch_model.safetensors");
        Path fromValues = dir.resolve("values.safetensors"), fromBytes = dir.resolve("bytes.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(reference)) {
            SequencedMap<String, SafetensorsWriter.Entry> values = new LinkedHashMap<>(), bytes = new LinkedHashMap<>();
            for (String name : f.names()) {
                assertEquals(DType.F32, f.dtype(name));   // float values hold F32 exactly
                values.put(name, floatEntry(DType.F32, f.shape(name), f.readFloats(name), true));
                bytes.put(name, SafetensorsWriter.Entry.raw(f.dtype(name), f.shape(name), f.raw(name)));
            }
            SafetensorsWriter.write(fromValues, values, f.metadata(), 1000);
            SafetensorsWriter.write(fromBytes, bytes, f.metadata());
        }
        assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(fromValues));
        assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(fromBytes));
    }

    @Test
    void aFailingOrShortDeferredTensorLeavesTheOldFile() throws IOException {
        Path p = dir.resolve("state.safetensors");
        Files.writeString(p, "old");
        SequencedMap<String, SafetensorsWriter.Entry> failing = everyKind(false);
        failing.put("late", SafetensorsWriter.Entry.deferred(DType.F32, new long[] {10}, (from, count) -> {
            throw new UserError("values not finite");
        }));
        assertThrows(UserError.class, () -> SafetensorsWriter.write(p, failing, Map.of()));
        SequencedMap<String, SafetensorsWriter.Entry> shortValues = everyKind(false);
        shortValues.put("short", SafetensorsWriter.Entry.deferred(DType.F16, new long[] {10}, (from, count) -> new float[count - 1]));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SafetensorsWriter.write(p, shortValues, Map.of()));
        assertTrue(e.getMessage().startsWith("short: asked for 10 values, got 9"), e.getMessage());
        assertEquals("old", Files.readString(p));
        assertEquals(List.of("state.safetensors"), listing());
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Entry.deferred(DType.I32, new long[] {2}, (from, count) -> new float[count]));
    }

    @Test
    void badEntriesAndFoldersAreRejectedWithoutOutput() throws IOException {
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Entry.floats(DType.F32, new long[] {3}, new float[2]));
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.Entry.floats(DType.I64, new long[] {2}, new float[2]));
        SequencedMap<String, SafetensorsWriter.Entry> reserved = new LinkedHashMap<>();
        reserved.put("__metadata__", SafetensorsWriter.Entry.floats(DType.F32, new long[] {1}, new float[1]));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.write(dir.resolve("x.safetensors"), reserved, Map.of()));
        UserError e = assertThrows(UserError.class,
                () -> SafetensorsWriter.write(dir.resolve("no/such/x.safetensors"), new LinkedHashMap<>(), Map.of()));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        assertEquals(List.of(), listing());
    }

    private List<String> listing() throws IOException {
        try (var s = Files.list(dir)) {
            String[] names = s.map(x -> x.getFileName().toString()).toArray(String[]::new);
            Arrays.sort(names);
            return List.of(names);
        }
    }

    @Test
    void failedWriteKeepsTheOldFile() throws IOException {
        Path p = dir.resolve("keep.safetensors");
        Files.writeString(p, "old");
        assertThrows(IllegalStateException.class, () -> AtomicFile.write(p, out -> {
            out.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            throw new IllegalStateException("boom");
        }));
        assertEquals("old", Files.readString(p));
        assertEquals(List.of("keep.safetensors"), listing());
    }
}
