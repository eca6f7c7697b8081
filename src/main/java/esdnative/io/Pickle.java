package esdnative.io;

import esdnative.util.UserError;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * A restricted pickle interpreter (https://github.com/python/cpython/blob/main/Lib/pickletools.py documents the
 * opcodes) for PyTorch checkpoints: it builds plain data — Map, List, {@link Tuple}, String, Long, BigInteger,
 * Double, Boolean, byte[], null — and never runs anything. A global may only name a type torch.save writes for
 * tensors and containers ({@link #TENSOR_GLOBALS}) or an inert bookkeeping class of Lightning checkpoints
 * ({@link #INERT_GLOBALS}, kept as an {@link Opaque} placeholder); any other global — {@code os.system},
 * {@code builtins.exec}, {@code subprocess.Popen}, ... — is refused with a UserError before it could be used.
 */
public final class Pickle {
    /** Globals whose meaning we implement. */
    static final Set<String> TENSOR_GLOBALS = Set.of(
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
            "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
            "torch.LongStorage", "torch.IntStorage");
    /** Globals found in Lightning checkpoints' bookkeeping, accepted only as inert placeholders. */
    static final Set<String> INERT_GLOBALS = Set.of(
            "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
            "numpy.core.multiarray.scalar", "numpy.dtype", "_codecs.encode", "torch.torch_version.TorchVersion");

    /** A Python tuple. */
    public record Tuple(List<Object> items) {
        public Object get(int i) { return items.get(i); }

        public int size() { return items.size(); }
    }

    /** An allowed global (a class or function), by its dotted name. */
    public record Global(String name) {}

    /** The result of calling an inert global: nothing but its name. */
    public record Opaque(String global) {}

    /** A tensor as torch's rebuild functions describe it: which storage, where in it, and how laid out. */
    public record TensorRef(Global storageType, String storageKey, long storageOffset, long[] shape, long[] stride) {}

    /** What persistent ids ({@code BINPERSID}) resolve to; the checkpoint reader supplies it. */
    public interface PersistentLoader extends Function<Tuple, Object> {}

    private static final Object MARK = new Object();

    private final String source;          // for error messages: the file (and member)
    private final ByteBuffer in;
    private final PersistentLoader persistentLoad;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private Pickle(String source, ByteBuffer in, PersistentLoader persistentLoad) {
        this.source = source;
        this.in = in.slice().order(ByteOrder.LITTLE_ENDIAN);
        this.persistentLoad = persistentLoad;
    }

    /**
     * Interprets one pickle from the buffer's position; on return the position is just past its STOP opcode.
     * {@code source} names the file in errors.
     */
    public static Object load(String source, ByteBuffer data, PersistentLoader persistentLoad) {
        Pickle p = new Pickle(source, data, persistentLoad);
        Object result = p.run();
        data.position(data.position() + p.in.position());
        return result;
    }

    private Object run() {
        try {
            while (true) {
                int at = in.position();
                int op = u8();
                switch (op) {
                    case 0x80 -> u8();                                    // PROTO
                    case 0x95 -> in.getLong();                            // FRAME: a length we do not need
                    case '.' -> { return pop(); }                          // STOP
                    case '(' -> { marks.add(stack.size()); stack.add(MARK); }
                    case '0' -> pop();                                     // POP
                    case '1' -> popMark();                                 // POP_MARK
                    case '2' -> push(peek());                              // DUP
                    case 'N' -> push(null);
                    case 0x88 -> push(Boolean.TRUE);
                    case 0x89 -> push(Boolean.FALSE);
                    case 'J' -> push((long) in.getInt());                  // BININT
                    case 'K' -> push((long) u8());                         // BININT1
                    case 'M' -> push((long) Short.toUnsignedInt(in.getShort()));   // BININT2
                    case 0x8a -> push(longValue(bytes(u8())));             // LONG1
                    case 0x8b -> push(longValue(bytes(length(in.getInt()))));     // LONG4
                    case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(in.getLong())));   // BINFLOAT: big-endian
                    case 'X' -> push(text(length(in.getInt())));          // BINUNICODE
                    case 0x8c -> push(text(u8()));                         // SHORT_BINUNICODE
                    case 0x8d -> push(text(length(in.getLong())));        // BINUNICODE8
                    case 'T' -> push(latin1(length(in.getInt())));        // BINSTRING
                    case 'U' -> push(latin1(u8()));                        // SHORT_BINSTRING
                    case 'B' -> push(bytes(length(in.getInt())));         // BINBYTES
                    case 'C' -> push(bytes(u8()));                         // SHORT_BINBYTES
                    case ')' -> push(new Tuple(List.of()));
                    case ']' -> push(new ArrayList<>());
                    case '}' -> push(new LinkedHashMap<>());
                    case 't' -> push(new Tuple(popMark()));
                    case 0x85 -> push(tupleOf(1));
                    case 0x86 -> push(tupleOf(2));
                    case 0x87 -> push(tupleOf(3));
                    case 'l' -> push(new ArrayList<>(popMark()));          // LIST
                    case 'd' -> push(dictOf(popMark()));                   // DICT
                    case 'a' -> { Object v = pop(); list(peek()).add(v); }             // APPEND
                    case 'e' -> { List<Object> items = popMark(); list(peek()).addAll(items); }   // APPENDS
                    case 's' -> { Object v = pop(); Object k = pop(); map(peek()).put(key(k), v); } // SETITEM
                    case 'u' -> { List<Object> kv = popMark(); map(peek()).putAll(dictOf(kv)); }     // SETITEMS
                    case 'q' -> memo.put((long) u8(), peek());              // BINPUT
                    case 'r' -> memo.put(Integer.toUnsignedLong(in.getInt()), peek());   // LONG_BINPUT
                    case 0x94 -> memo.put((long) memo.size(), peek());      // MEMOIZE
                    case 'h' -> push(memoGet(u8()));                        // BINGET
                    case 'j' -> push(memoGet(Integer.toUnsignedLong(in.getInt())));     // LONG_BINGET
                    case 'c' -> push(global(line() + "." + line()));       // GLOBAL
                    case 0x93 -> { String name = string(pop()); push(global(string(pop()) + "." + name)); } // STACK_GLOBAL
                    case 'R' -> { Object args = pop(); push(call(pop(), args)); }       // REDUCE
                    case 'b' -> build(pop(), peek());                        // BUILD
                    case 'Q' -> push(persistent(pop()));                     // BINPERSID
                    default -> throw fail(String.format("unsupported pickle opcode 0x%02x at byte %d", op, at));
                }
            }
        } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
            throw fail("pickle data ends early (truncated or corrupt file)");
        }
    }

    private Object global(String name) {
        if (TENSOR_GLOBALS.contains(name) || INERT_GLOBALS.contains(name)) return new Global(name);
        throw fail("refusing pickle global " + name + " (only tensor and container types are allowed; the file may be malicious)");
    }

    /** REDUCE: the only calls we make are to the rebuild functions and OrderedDict, interpreted, never executed. */
    private Object call(Object callable, Object argsObject) {
        if (!(callable instanceof Global g)) throw fail("pickle calls a non-global " + describe(callable));
        if (!(argsObject instanceof Tuple args)) throw fail("pickle calls " + g.name() + " without an argument tuple");
        return switch (g.name()) {
            case "collections.OrderedDict" -> new LinkedHashMap<>();
            case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2" -> rebuildTensor(args);
            case "torch._utils._rebuild_parameter" -> args.get(0);
            default -> {
                if (INERT_GLOBALS.contains(g.name())) yield new Opaque(g.name());
                throw fail("pickle calls " + g.name() + ", which is not a function");
            }
        };
    }

    /** (storage, storage_offset, size, stride, ...) → TensorRef. */
    private TensorRef rebuildTensor(Tuple args) {
        if (args.size() < 4 || !(args.get(0) instanceof StorageRef s)) throw fail("malformed tensor record " + args);
        long[] shape = longs(args.get(2)), stride = longs(args.get(3));
        if (shape.length != stride.length) throw fail("tensor shape and stride differ in rank: " + args);
        return new TensorRef(s.type(), s.key(), s.offset() + asLong(args.get(1)), shape, stride);
    }

    /** A storage named by a persistent id; {@code offset} is in elements (legacy views start inside their root). */
    public record StorageRef(Global type, String key, long offset) {}

    private Object persistent(Object pid) {
        if (!(pid instanceof Tuple t)) throw fail("malformed persistent id " + describe(pid));
        return persistentLoad.apply(t);
    }

    private void build(Object state, Object target) {
        // OrderedDict._metadata and the state of inert placeholders carry nothing we need
        if (!(target instanceof Map) && !(target instanceof Opaque)) {
            throw fail("pickle sets the state of " + describe(target) + ", which is not allowed");
        }
    }

    private long[] longs(Object o) {
        if (!(o instanceof Tuple t)) throw fail("expected a tuple of integers, got " + describe(o));
        long[] v = new long[t.size()];
        for (int i = 0; i < v.length; i++) v[i] = asLong(t.get(i));
        return v;
    }

    private long asLong(Object o) {
        if (o instanceof Long l) return l;
        throw fail("expected an integer, got " + describe(o));
    }

    private static Object longValue(byte[] littleEndianTwosComplement) {
        byte[] be = new byte[littleEndianTwosComplement.length];
        for (int i = 0; i < be.length; i++) be[i] = littleEndianTwosComplement[be.length - 1 - i];
        BigInteger v = be.length == 0 ? BigInteger.ZERO : new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private Tuple tupleOf(int n) {
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) items[i] = pop();
        return new Tuple(Arrays.asList(items));
    }

    private Map<Object, Object> dictOf(List<Object> kv) {
        if (kv.size() % 2 != 0) throw fail("odd number of dict items");
        Map<Object, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.size(); i += 2) m.put(key(kv.get(i)), kv.get(i + 1));
        return m;
    }

    /** Keys must be hashable plain values (strings, numbers, globals, tuples of them). */
    private Object key(Object k) {
        if (k instanceof List || k instanceof Map || k instanceof byte[]) throw fail("unhashable dict key " + describe(k));
        return k;
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) {
        if (o instanceof List<?> l) return (List<Object>) l;
        throw fail("APPEND to " + describe(o));
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> map(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw fail("SETITEM on " + describe(o));
    }

    private String string(Object o) {
        if (o instanceof String s) return s;
        throw fail("expected a string, got " + describe(o));
    }

    private Object memoGet(long key) {
        if (!memo.containsKey(key)) throw fail("pickle refers to memo entry " + key + " that was never stored");
        return memo.get(key);
    }

    private void push(Object o) { stack.add(o); }

    private Object pop() {
        if (stack.isEmpty() || stack.getLast() == MARK) throw fail("pickle stack underflow");
        return stack.removeLast();
    }

    private Object peek() {
        if (stack.isEmpty() || stack.getLast() == MARK) throw fail("pickle stack underflow");
        return stack.getLast();
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) throw fail("pickle MARK missing");
        int m = marks.removeLast();
        List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private int u8() { return Byte.toUnsignedInt(in.get()); }

    private int length(long n) {
        if (n < 0 || n > in.remaining()) throw fail("pickle data ends early (truncated or corrupt file)");
        return (int) n;
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[length(n)];
        in.get(b);
        return b;
    }

    private String text(int n) { return new String(bytes(n), StandardCharsets.UTF_8); }

    private String latin1(int n) { return new String(bytes(n), StandardCharsets.ISO_8859_1); }

    /** A newline-terminated ASCII line (GLOBAL's module and name). */
    private String line() {
        StringBuilder b = new StringBuilder();
        for (int c = u8(); c != '\n'; c = u8()) {
            if (b.length() > 256) throw fail("pickle global name too long");
            b.append((char) c);
        }
        return b.toString();
    }

    private static String describe(Object o) {
        return o == null ? "None" : o.getClass().getSimpleName();
    }

    private UserError fail(String what) {
        return new UserError(source + ": " + what);
    }
}
