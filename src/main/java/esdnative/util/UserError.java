package esdnative.util;

/**
 * A problem with what the user gave us (a file, a flag, a value), reported as one line and exit code 2,
 * without a stack trace unless {@code --verbose}. The message names the file or value and what is wrong; the core
 * names no flag (its callers are not all commands), a command puts its flag in front ({@code options.Flags}).
 */
public class UserError extends RuntimeException {
    public UserError(String message) { super(message); }

    public UserError(String message, Throwable cause) { super(message, cause); }
}
