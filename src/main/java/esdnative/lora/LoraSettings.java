package esdnative.lora;

import esdnative.util.UserError;
import esdnative.io.DType;

import java.util.Locale;

/**
 * How a weight change is written as a LoRA: the rank of each module's factorisation and the stored dtype.
 *
 * @param rank  the largest rank per module; {@link #FULL} keeps every module's ΔW exactly (rank min(m, n))
 * @param dtype F16 (the default, as LoRA files are shared), BF16 or F32
 */
public record LoraSettings(int rank, DType dtype) {
    public static final int FULL = Integer.MAX_VALUE;
    public static final int DEFAULT_RANK = 8;

    public LoraSettings {
        if (rank < 1) throw new IllegalArgumentException("rank " + rank + " < 1");
        if (dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F32) throw new IllegalArgumentException("LoRA dtype " + dtype);
    }

    public static LoraSettings defaults() { return new LoraSettings(DEFAULT_RANK, DType.F16); }

    /** "full" or a positive integer. */
    public static int parseRank(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.equals("full")) return FULL;
        try {
            int r = Integer.parseInt(t);
            if (r >= 1) return r;
        } catch (NumberFormatException ignored) {
            // the message below says what is valid
        }
        throw new UserError("'" + text + "' is not a rank; give a positive integer or full");
    }

    /** fp16, bf16 or fp32 (also f16, float16, ...). */
    public static DType parseDtype(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "fp16", "f16", "float16", "half" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            case "fp32", "f32", "float32", "float" -> DType.F32;
            default -> throw new UserError("unknown dtype '" + text + "'; valid: fp16, bf16, fp32");
        };
    }

    /** The rank as written in messages and metadata. */
    public String rankText() { return rank == FULL ? "full" : Integer.toString(rank); }
}
