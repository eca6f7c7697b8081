package esdnative.io;

/**
 * Element types of the tensor files we read and write, with their size and their safetensors name.
 * Floating types convert to float32 on read (F16/BF16 exactly); integer types convert by value.
 */
public enum DType {
    F32(4, "F32", true),
    F16(2, "F16", true),
    BF16(2, "BF16", true),
    F64(8, "F64", true),
    I64(8, "I64", false),
    I32(4, "I32", false);

    private final int bytes;
    private final String safetensorsName;
    private final boolean floating;

    DType(int bytes, String safetensorsName, boolean floating) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
        this.floating = floating;
    }

    /** Bytes per element. */
    public int bytes() { return bytes; }

    /** The name in a safetensors header ("F32", "BF16", ...). */
    public String safetensorsName() { return safetensorsName; }

    /** True for F32, F16, BF16 and F64. */
    public boolean isFloating() { return floating; }

    /** The type with this safetensors name, or null if we do not support it (e.g. "U8", "F8_E4M3"). */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name)) return d;
        }
        return null;
    }
}
