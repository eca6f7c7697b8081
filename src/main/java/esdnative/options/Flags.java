package esdnative.options;

import esdnative.util.UserError;

import java.util.function.Supplier;

/**
 * Where a command puts its flag's name on the core's words: the core says what is wrong with a value ("'x' is not a
 * rank; ..."), and the command, which knows the value came from {@code --lora-rank}, says so in front.
 */
public final class Flags {
    private Flags() {}

    /** Runs {@code parse}; a {@link UserError} it throws is reworded as "{@code flag}: its message". */
    public static <T> T about(String flag, Supplier<T> parse) {
        try {
            return parse.get();
        } catch (UserError e) {
            throw new UserError(flag + ": " + e.getMessage(), e);
        }
    }

    /** As {@link #about(String, Supplier)}, for a check that returns nothing. */
    public static void about(String flag, Runnable check) {
        about(flag, () -> {
            check.run();
            return null;
        });
    }
}
