package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;

/** Loads a CLIP part's declared tensors from a safetensors file under a name prefix, checking each shape first. */
public final class ClipCheckpoint {
    private ClipCheckpoint() {}

    /** Every declared tensor must be present as {@code prefix + name} with the declared shape. */
    public static Weights load(Backend backend, SequencedMap<String, int[]> shapes, SafetensorsFile file, String prefix,
                        String part) {
        Map<String, int[]> found = new LinkedHashMap<>();
        for (TensorInfo t : file.tensors()) {
            if (t.name().startsWith(prefix)) found.put(t.name().substring(prefix.length()), t.intShape());
        }
        return load(backend, shapes, found, name -> file.readFloats(prefix + name), file.path() + ": " + part, prefix);
    }

    /**
     * Every declared tensor must be in {@code found} (name → shape, names as declared) with the declared shape;
     * tensors not declared are left unread.
     *
     * @param what   the source and the part, for messages ("model.safetensors: text encoder")
     * @param prefix what the names carry in the source, for messages
     */
    public static Weights load(Backend backend, SequencedMap<String, int[]> shapes, Map<String, int[]> found,
                               Function<String, float[]> reader, String what, String prefix) {
        for (var e : shapes.entrySet()) {
            int[] got = found.get(e.getKey());
            String name = prefix + e.getKey();
            if (got == null) throw new UserError(what + " tensor \"" + name + "\" is missing");
            if (!Arrays.equals(got, e.getValue())) {
                throw new UserError(what + " tensor \"" + name + "\" has shape " + Arrays.toString(got)
                        + ", the config needs " + Arrays.toString(e.getValue()));
            }
        }
        return Weights.load(backend, shapes, reader);
    }
}
