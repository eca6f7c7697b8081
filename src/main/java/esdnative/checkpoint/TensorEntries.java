package esdnative.checkpoint;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.io.TensorSource;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * A tensor of any source as a safetensors entry to write. Kept dtypes are lossless: a safetensors tensor is a
 * zero-copy view of its bytes; a checkpoint's float16/bfloat16/float32 tensor goes through float32, which holds
 * each of them exactly, and is read only when it is written; integer tensors are exact up to 2^24.
 */
public final class TensorEntries {
    private TensorEntries() {}

    /**
     * @param shape  the shape to write (a reshape of the stored one)
     * @param target the dtype to write floating tensors in, or null to keep the stored one; integer tensors keep theirs
     */
    public static Entry of(TensorSource file, String name, long[] shape, DType target) {
        DType from = file.dtype(name);
        DType to = target == null || !from.isFloating() ? from : target;
        if (to == from && file instanceof SafetensorsFile f) return Entry.raw(from, shape, f.raw(name));
        if (to == DType.F64 && from == DType.F64) {
            throw new UserError(file.path() + ": " + name + " is float64, which this tool cannot copy losslessly from a checkpoint");
        }
        if (to.isFloating()) return Entry.deferred(to, shape, readWhenWritten(file, name));
        float[] values = file.readFloats(name);
        ByteBuffer b = ByteBuffer.allocate(values.length * to.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            if (Math.abs(v) >= 0x1p24f) throw new UserError(file.path() + ": integer tensor " + name + " has values too large to convert");
            if (to == DType.I64) b.putLong((long) v); else b.putInt((int) v);
        }
        return Entry.raw(to, shape, MemorySegment.ofArray(b.array()));
    }

    /**
     * A backend's tensor stored as {@code dtype} under {@code shape} (of the same size), copied to the host a piece at
     * a time while it is written, so that no host copy of it is kept.
     */
    public static Entry of(Backend be, Tensor t, DType dtype, long[] shape) {
        if (Arrays.stream(shape).reduce(1, Math::multiplyExact) != t.size()) {
            throw new IllegalArgumentException(t + " cannot be stored with shape " + Arrays.toString(shape));
        }
        return Entry.deferred(dtype, shape, (from, count) -> be.toHost(t.view(from, count)));
    }

    /**
     * A checkpoint tensor's values, read only when the entry is written (so that writing a model does not first read
     * all of it): once, at its first piece, and dropped after its last.
     */
    private static SafetensorsWriter.Values readWhenWritten(TensorSource file, String name) {
        return new SafetensorsWriter.Values() {
            private float[] all;

            @Override
            public float[] read(long from, int count) {
                if (all == null) all = file.readFloats(name);
                float[] piece = from == 0 && count == all.length ? all : Arrays.copyOfRange(all, (int) from, (int) from + count);
                if (from + count == all.length) all = null;
                return piece;
            }
        };
    }

    /** A backend's tensor stored as {@code dtype} with its own shape: {@link #of(Backend, Tensor, DType, long[])}. */
    public static Entry of(Backend be, Tensor t, DType dtype) {
        return of(be, t, dtype, Arrays.stream(t.shape()).asLongStream().toArray());
    }

    /** A model tensor: the whole stored tensor, or its third of dim 0 (one of OpenCLIP's fused q/k/v projections). */
    public static Entry of(ModelWeights.Source s, long[] shape, DType target) {
        if (s.third() < 0) return of(s.file(), s.name(), shape, target);
        DType from = s.file().dtype(s.name());
        DType to = target == null ? from : target;
        if (to == from && s.file() instanceof SafetensorsFile f) {
            MemorySegment all = f.raw(s.name());
            long third = all.byteSize() / 3;
            return Entry.raw(from, shape, all.asSlice(s.third() * third, third));
        }
        float[] all = s.file().readFloats(s.name());
        int third = all.length / 3;
        return Entry.floats(to, shape, Arrays.copyOfRange(all, s.third() * third, (s.third() + 1) * third));
    }

    /** A model's SD 2.x text encoder in the single-file layout: {@link #openClipText(SequencedMap, Object)}. */
    public static SequencedMap<String, Entry> openClipText(ModelWeights w, DType target) {
        SequencedMap<String, Entry> text = new LinkedHashMap<>();
        for (String name : w.names(Component.TEXT_ENCODER)) {
            text.put(name, of(w.source(Component.TEXT_ENCODER, name), w.shape(Component.TEXT_ENCODER, name), target));
        }
        return openClipText(text, w.path());
    }

    /**
     * An SD 2.x text encoder (diffusers names → entries) in the single-file layout ({@link OpenClipNames}): q, k and v
     * stacked into the fused in_proj tensors, in the order of the diffusers names; tensors the tower has no place for
     * (position_ids) left out. {@code source} names the model in messages.
     */
    public static SequencedMap<String, Entry> openClipText(SequencedMap<String, Entry> textEncoder, Object source) {
        SequencedMap<String, List<Entry>> parts = new LinkedHashMap<>();
        textEncoder.forEach((name, entry) -> {
            OpenClipNames.Part p = OpenClipNames.toCompVis(name);
            if (p == null) return;
            List<Entry> slots = parts.computeIfAbsent(p.compVisName(), k -> Arrays.asList(new Entry[p.third() < 0 ? 1 : 3]));
            slots.set(Math.max(p.third(), 0), entry);
        });
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        parts.forEach((name, slots) -> {
            if (slots.contains(null)) throw new UserError(source + ": text encoder lacks a q, k or v projection of " + name);
            entries.put(name, slots.size() == 1 ? slots.getFirst() : stacked(slots));
        });
        return entries;
    }

    /** Entries of one dtype stacked along dim 0 (all raw bytes, or all float values). */
    private static Entry stacked(List<Entry> parts) {
        long[] shape = parts.getFirst().shape();
        shape[0] *= parts.size();
        DType dtype = parts.getFirst().dtype();
        if (parts.stream().allMatch(e -> e.bytes() != null)) {
            long size = parts.stream().mapToLong(e -> e.bytes().byteSize()).sum();
            MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(size)]);
            long at = 0;
            for (Entry e : parts) {
                MemorySegment.copy(e.bytes(), 0, out, at, e.bytes().byteSize());
                at += e.bytes().byteSize();
            }
            return Entry.raw(dtype, shape, out);
        }
        List<float[]> values = parts.stream().map(TensorEntries::values).toList();
        float[] out = new float[values.stream().mapToInt(v -> v.length).sum()];
        int at = 0;
        for (float[] v : values) {
            System.arraycopy(v, 0, out, at, v.length);
            at += v.length;
        }
        return Entry.floats(dtype, shape, out);
    }

    /** All the float values of an entry that holds them or reads them when written. */
    private static float[] values(Entry e) {
        if (e.floats() != null) return e.floats();
        long n = Arrays.stream(e.shape()).reduce(1, Math::multiplyExact);
        return e.values().read(0, Math.toIntExact(n));
    }
}
