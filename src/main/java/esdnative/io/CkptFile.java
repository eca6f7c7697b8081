package esdnative.io;

import esdnative.util.UserError;
import esdnative.io.Pickle.Global;
import esdnative.io.Pickle.StorageRef;
import esdnative.io.Pickle.TensorRef;
import esdnative.io.Pickle.Tuple;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A PyTorch checkpoint ({@code .ckpt}, {@code .pt}, {@code .bin}) read without running its pickle: the zip format of
 * {@code torch.save} (an archive with {@code <prefix>/data.pkl} and one {@code <prefix>/data/<key>} member per
 * storage) and the legacy format (pickled magic number, protocol, system info, the object, the storage keys, then
 * each storage as an 8-byte element count and its bytes). The tensors are those of the {@code state_dict} entry
 * (or of the top-level dict if it holds tensors directly); storages are read when a tensor is asked for.
 * Hostile pickles are refused by {@link Pickle}; every problem is a one-line UserError naming the file.
 */
public final class CkptFile implements TensorSource {
    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);   // torch.serialization
    private static final Map<String, DType> STORAGE_TYPES = Map.of(
            "torch.FloatStorage", DType.F32, "torch.HalfStorage", DType.F16, "torch.BFloat16Storage", DType.BF16,
            "torch.DoubleStorage", DType.F64, "torch.LongStorage", DType.I64, "torch.IntStorage", DType.I32);

    /** A tensor of the state dict: element type, shape, and where its elements are. */
    public record Tensor(String name, DType dtype, long[] shape, long[] stride, String storageKey, long storageOffset) {
        public Tensor {
            shape = shape.clone();
            stride = stride.clone();
        }

        @Override
        public long[] shape() { return shape.clone(); }

        @Override
        public long[] stride() { return stride.clone(); }

        public long numel() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return n;
        }

        public int[] intShape() {
            int[] s = new int[shape.length];
            for (int i = 0; i < s.length; i++) s[i] = Math.toIntExact(shape[i]);
            return s;
        }
    }

    private final Path path;
    private final ZipFile zip;                           // zip format, else null
    private final String zipPrefix;                      // "archive/" or the like
    private final FileChannel legacy;                    // legacy format, else null
    private final Map<String, long[]> legacyStorages;    // key -> {data position, element count}
    private final Map<String, Tensor> tensors;
    private final Map<String, Object> extras;

    private CkptFile(Path path, ZipFile zip, String zipPrefix, FileChannel legacy, Map<String, long[]> legacyStorages,
                     Map<String, Tensor> tensors, Map<String, Object> extras) {
        this.path = path;
        this.zip = zip;
        this.zipPrefix = zipPrefix;
        this.legacy = legacy;
        this.legacyStorages = legacyStorages;
        this.tensors = tensors;
        this.extras = extras;
    }

    /** Opens a checkpoint and interprets its pickle (tensor data is read later, on demand). */
    public static CkptFile open(Path path) {
        TensorSource.requireRegularFile(path);
        byte[] head = new byte[4];
        try (InputStream in = Files.newInputStream(path)) {
            if (in.readNBytes(head, 0, 4) < 4) throw new UserError(path + ": not a PyTorch checkpoint (file too short)");
        } catch (NoSuchFileException e) {
            throw new UserError(path + ": no such file");
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
        if (head[0] == 'P' && head[1] == 'K') return openZip(path);
        if ((head[0] & 0xff) == 0x80) return openLegacy(path);
        throw new UserError(path + ": not a PyTorch checkpoint (neither a zip archive nor a pickle)");
    }

    private static CkptFile openZip(Path path) {
        ZipFile zip;
        try {
            zip = new ZipFile(path.toFile());
        } catch (ZipException e) {
            throw new UserError(path + ": corrupt or truncated zip archive (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
        try {
            ZipEntry pkl = zip.stream().filter(e -> e.getName().endsWith("data.pkl")
                    && e.getName().indexOf('/') == e.getName().length() - "data.pkl".length() - 1).findFirst()
                    .orElseThrow(() -> new UserError(path + ": zip archive has no <name>/data.pkl (not a torch.save file)"));
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            byte[] pickle = readEntry(path, zip, pkl, Integer.MAX_VALUE - 8);
            Object root = Pickle.load(path + " (" + pkl.getName() + ")", ByteBuffer.wrap(pickle), pid -> zipStorage(path, pid));
            CkptFile f = fromRoot(path, zip, prefix, null, Map.of(), root);
            for (Tensor t : f.tensors.values()) {
                if (zip.getEntry(prefix + "data/" + t.storageKey()) == null) {
                    throw new UserError(path + ": tensor \"" + t.name() + "\" refers to storage " + t.storageKey()
                            + " that is not in the archive");
                }
            }
            return f;
        } catch (RuntimeException e) {
            closeQuietly(zip);
            throw e;
        }
    }

    /** Zip format persistent id: ('storage', storage_type, key, location, numel). */
    private static StorageRef zipStorage(Path path, Tuple pid) {
        if (pid.size() < 5 || !"storage".equals(pid.get(0)) || !(pid.get(1) instanceof Global type)
                || !(pid.get(2) instanceof String key)) {
            throw new UserError(path + ": malformed storage reference " + pid.items());
        }
        return new StorageRef(type, key, 0);
    }

    private static CkptFile openLegacy(Path path) {
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
        try {
            long size = ch.size();
            // the pickles sit at the start; map at most what an int-indexed buffer can address
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, Integer.MAX_VALUE - 8))
                    .order(ByteOrder.LITTLE_ENDIAN);
            Pickle.PersistentLoader none = pid -> { throw new UserError(path + ": unexpected storage reference in the header"); };
            Object magic = Pickle.load(path.toString(), buf, none);
            if (!LEGACY_MAGIC.equals(magic)) {
                throw new UserError(path + ": not a PyTorch checkpoint (legacy magic number missing)");
            }
            Object protocol = Pickle.load(path.toString(), buf, none);
            if (!Long.valueOf(1001).equals(protocol)) throw new UserError(path + ": unsupported legacy protocol " + protocol);
            Object sysInfo = Pickle.load(path.toString(), buf, none);
            if (sysInfo instanceof Map<?, ?> info && Boolean.FALSE.equals(info.get("little_endian"))) {
                throw new UserError(path + ": big-endian checkpoints are not supported");
            }
            Map<String, StorageRef> roots = new HashMap<>();
            Object root = Pickle.load(path.toString(), buf, pid -> legacyStorage(path, pid, roots));
            Object keys = Pickle.load(path.toString(), buf, none);
            if (!(keys instanceof List<?> keyList)) throw new UserError(path + ": legacy storage key list missing");
            // then, in that order, each storage: int64 element count and the raw elements
            Map<String, long[]> storages = new HashMap<>();
            long at = buf.position();
            for (Object k : keyList) {
                StorageRef s = roots.get(String.valueOf(k));
                if (s == null) throw new UserError(path + ": storage " + k + " is listed but never used");
                ByteBuffer count = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                if (ch.read(count, at) != 8) throw new UserError(path + ": truncated legacy checkpoint (storage " + k + ")");
                long n = count.getLong(0);
                long bytes = n * STORAGE_TYPES.get(s.type().name()).bytes();
                if (n < 0 || at + 8 + bytes > size) throw new UserError(path + ": truncated legacy checkpoint (storage " + k + ")");
                storages.put(s.key(), new long[] {at + 8, n});
                at += 8 + bytes;
            }
            return fromRoot(path, null, null, ch, storages, root);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /** Legacy persistent id: ('storage', storage_type, root_key, location, numel, view_metadata). */
    private static StorageRef legacyStorage(Path path, Tuple pid, Map<String, StorageRef> roots) {
        if (pid.size() < 6 || !"storage".equals(pid.get(0)) || !(pid.get(1) instanceof Global type)
                || !(pid.get(2) instanceof String key)) {
            throw new UserError(path + ": malformed storage reference " + pid.items());
        }
        storageType(path, type);
        roots.putIfAbsent(key, new StorageRef(type, key, 0));
        long offset = 0;
        if (pid.get(5) instanceof Tuple view && view.size() == 3 && view.get(1) instanceof Long viewOffset) {
            offset = viewOffset;   // (view_key, offset, size): a view starting inside the root storage
        }
        return new StorageRef(type, key, offset);
    }

    private static DType storageType(Path path, Global type) {
        DType d = STORAGE_TYPES.get(type.name());
        if (d == null) throw new UserError(path + ": unsupported storage type " + type.name());
        return d;
    }

    /** Finds the state dict in the unpickled object and records its tensors. */
    private static CkptFile fromRoot(Path path, ZipFile zip, String prefix, FileChannel legacy,
                                     Map<String, long[]> legacyStorages, Object root) {
        if (!(root instanceof Map<?, ?> top)) throw new UserError(path + ": checkpoint is not a dict");
        Map<?, ?> stateDict = top.get("state_dict") instanceof Map<?, ?> sd ? sd : top;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : stateDict.entrySet()) {
            if (e.getKey() instanceof String name && e.getValue() instanceof TensorRef ref) {
                if (Arrays.stream(ref.shape()).anyMatch(d -> d < 0) || Arrays.stream(ref.stride()).anyMatch(d -> d < 0)) {
                    throw new UserError(path + ": tensor " + name + " has a negative size or stride (shape "
                            + Arrays.toString(ref.shape()) + ", stride " + Arrays.toString(ref.stride()) + "); the file is corrupt");
                }
                tensors.put(name, new Tensor(name, storageType(path, ref.storageType()), ref.shape(), ref.stride(),
                        ref.storageKey(), ref.storageOffset()));
            }
        }
        if (tensors.isEmpty()) throw new UserError(path + ": checkpoint holds no tensors (no state_dict)");
        Map<String, Object> extras = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : top.entrySet()) {
            Object v = e.getValue();
            if (e.getKey() instanceof String k && (v instanceof Long || v instanceof Double || v instanceof String || v instanceof Boolean)) {
                extras.put(k, v);
            }
        }
        return new CkptFile(path, zip, prefix, legacy, legacyStorages, Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(extras));
    }

    @Override
    public Path path() { return path; }

    /** The state dict's tensor names, in file order. */
    @Override
    public Set<String> names() { return tensors.keySet(); }

    @Override
    public DType dtype(String name) { return require(name).dtype(); }

    @Override
    public long[] shape(String name) { return require(name).shape(); }

    /** The state dict's tensors, in file order. */
    public List<Tensor> tensors() { return List.copyOf(tensors.values()); }

    /** The tensor called {@code name}, or null. */
    public Tensor info(String name) { return tensors.get(name); }

    /** Top-level plain values beside the state dict, e.g. {@code global_step}, {@code epoch}. */
    public Map<String, Object> extras() { return extras; }

    /** The tensor's elements in row-major order, converted to float32 (F16/BF16 exactly). */
    @Override
    public float[] readFloats(String name) {
        Tensor t = require(name);
        long n = t.numel();
        if (n > Integer.MAX_VALUE - 8) throw new UserError(path + ": tensor \"" + name + "\" is too large for one array");
        ByteBuffer storage = storageBytes(t);
        long elements = storage.capacity() / t.dtype().bytes();
        long[] shape = t.shape(), stride = t.stride();
        // the furthest element the view touches must lie inside the storage
        long last = t.storageOffset();
        for (int d = 0; d < shape.length; d++) {
            if (stride[d] < 0) throw new UserError(path + ": tensor \"" + name + "\" has a negative stride");
            last += (shape[d] - 1) * stride[d];
        }
        if (n > 0 && (t.storageOffset() < 0 || last >= elements)) {
            throw new UserError(path + ": tensor \"" + name + "\" reaches past its storage (" + elements + " elements)");
        }
        float[] out = new float[(int) n];
        if (t.dtype() == DType.F32 && isRowMajor(shape, stride)) {
            storage.slice((int) (4 * t.storageOffset()), 4 * out.length).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
            return out;
        }
        long[] index = new long[shape.length];
        for (int i = 0; i < out.length; i++) {
            long at = t.storageOffset();
            for (int d = 0; d < shape.length; d++) at += index[d] * stride[d];
            out[i] = element(storage, t.dtype(), (int) at);
            for (int d = shape.length - 1; d >= 0; d--) {   // row-major odometer
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return out;
    }

    /** True if the strides are those of a contiguous row-major tensor (size-1 dims may have any stride). */
    private static boolean isRowMajor(long[] shape, long[] stride) {
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    private Tensor require(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new UserError(path + ": no tensor named \"" + name + "\"");
        return t;
    }

    private static float element(ByteBuffer b, DType dtype, int i) {
        return switch (dtype) {
            case F32 -> b.getFloat(4 * i);
            case F16 -> Halfs.f16ToFloat(b.getShort(2 * i));
            case BF16 -> Halfs.bf16ToFloat(b.getShort(2 * i));
            case F64 -> (float) b.getDouble(8 * i);
            case I64 -> (float) b.getLong(8 * i);
            case I32 -> (float) b.getInt(4 * i);
        };
    }

    private ByteBuffer storageBytes(Tensor t) {
        try {
            if (zip != null) {
                ZipEntry e = zip.getEntry(zipPrefix + "data/" + t.storageKey());
                return ByteBuffer.wrap(readEntry(path, zip, e, Integer.MAX_VALUE - 8)).order(ByteOrder.LITTLE_ENDIAN);
            }
            long[] s = legacyStorages.get(t.storageKey());
            if (s == null) throw new UserError(path + ": storage " + t.storageKey() + " of \"" + t.name() + "\" is missing");
            long bytes = s[1] * t.dtype().bytes();
            if (bytes > Integer.MAX_VALUE - 8) throw new UserError(path + ": storage " + t.storageKey() + " is too large");
            return legacy.map(FileChannel.MapMode.READ_ONLY, s[0], bytes).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UserError(path + ": cannot read storage " + t.storageKey() + ": " + e.getMessage(), e);
        }
    }

    private static byte[] readEntry(Path path, ZipFile zip, ZipEntry e, int limit) {
        try (InputStream in = zip.getInputStream(e)) {
            if (e.getSize() > limit) throw new UserError(path + ": archive member " + e.getName() + " is too large");
            return in.readAllBytes();
        } catch (ZipException x) {
            throw new UserError(path + ": corrupt archive member " + e.getName() + " (" + x.getMessage() + ")");
        } catch (IOException x) {
            throw new UserError(path + ": cannot read archive member " + e.getName() + ": " + x.getMessage(), x);
        }
    }

    @Override
    public void close() {
        if (zip != null) closeQuietly(zip);
        if (legacy != null) closeQuietly(legacy);
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // nothing useful to report while closing a file we only read
        }
    }
}
