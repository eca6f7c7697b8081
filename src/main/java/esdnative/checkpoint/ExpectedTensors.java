package esdnative.checkpoint;

import esdnative.util.UserError;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * The one name-and-shape check a model part passes before its weights are read: every parameter its config implies
 * is in the source with that shape, and, where the source's tensors of that part are all parameters, none is left
 * over. A source that fails is a user error naming the first few problems.
 */
public final class ExpectedTensors {
    private static final int SHOWN_PROBLEMS = 5;

    /** What to do with found tensors the config does not declare. */
    public enum Extras {
        /** an error: the source is another architecture than the config says */
        REFUSED,
        /** left unread: buffers such as CLIP's position_ids, or other parts of the same file */
        IGNORED
    }

    private ExpectedTensors() {}

    /**
     * @param expected the part's parameters by name, with their shapes (from its config)
     * @param found    the source's tensors of that part, same names, with their stored shapes
     * @param source   the file or folder, first in the message
     * @param part     "UNet", "VAE", "text encoder", ...
     * @throws UserError "{source}: does not match the {part} config: missing a; b has shape [..], expected [..];
     *                   unexpected c (and n more)"
     */
    public static void check(SequencedMap<String, int[]> expected, Map<String, int[]> found, Extras extras,
                             Object source, String part) {
        List<String> problems = new ArrayList<>();
        for (var e : expected.entrySet()) {
            int[] got = found.get(e.getKey());
            if (got == null) problems.add("missing " + e.getKey());
            else if (!Arrays.equals(got, e.getValue())) {
                problems.add(e.getKey() + " has shape " + Arrays.toString(got) + ", expected " + Arrays.toString(e.getValue()));
            }
        }
        if (extras == Extras.REFUSED) {
            for (String name : found.keySet()) if (!expected.containsKey(name)) problems.add("unexpected " + name);
        }
        if (problems.isEmpty()) return;
        String shown = String.join("; ", problems.subList(0, Math.min(SHOWN_PROBLEMS, problems.size())));
        String more = problems.size() > SHOWN_PROBLEMS ? " (and " + (problems.size() - SHOWN_PROBLEMS) + " more)" : "";
        throw new UserError(source + ": does not match the " + part + " config: " + shown + more);
    }
}
