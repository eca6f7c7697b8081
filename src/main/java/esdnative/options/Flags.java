package esdnative.options;

import esdnative.io.AtomicOutput;
import esdnative.util.UserError;

import java.util.function.Supplier;

/**
 * Where a command puts its flag's name on the core's words: the core says what is wrong with a value ("'x' is not a
 * rank; ..."), and the command, which knows the value came from {@code --lora-rank}, says so in front. Where one kind
 * of refusal is lifted by a flag ("already exists": {@code --overwrite}), the command says that too, after it.
 */
public final class Flags {
    private Flags() {}

    /**
     * What a command adds after one kind of the core's refusals (the core throws it as a {@code kind}): the flag that
     * lifts it, e.g. "pass --overwrite to replace it".
     */
    public record Hint(Class<? extends UserError> kind, String words) {}

    /** For a command with {@code --overwrite}: an existing output is replaced only when it is given. */
    public static final Hint OVERWRITE = new Hint(AtomicOutput.Exists.class, "pass --overwrite to replace it");

    /**
     * Runs {@code parse}; a {@link UserError} it throws is reworded as "{@code flag}: its message", followed by
     * "; words" of each hint of its kind (or of its cause's).
     */
    public static <T> T about(String flag, Supplier<T> parse, Hint... hints) {
        try {
            return parse.get();
        } catch (UserError e) {
            StringBuilder message = new StringBuilder(flag).append(": ").append(e.getMessage());
            for (Hint h : hints) if (isOf(h.kind(), e)) message.append("; ").append(h.words());
            throw new UserError(message.toString(), e);
        }
    }

    /** Whether {@code e} is of {@code kind} or was caused by one (the core may reword a refusal it passes on). */
    private static boolean isOf(Class<? extends UserError> kind, Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) if (kind.isInstance(t)) return true;
        return false;
    }

    /** As {@link #about(String, Supplier, Hint...)}, for a check that returns nothing. */
    public static void about(String flag, Runnable check, Hint... hints) {
        about(flag, () -> {
            check.run();
            return null;
        }, hints);
    }
}
