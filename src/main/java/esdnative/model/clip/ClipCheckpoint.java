package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;

import java.util.Arrays;
import java.util.SequencedMap;

/** Loads a CLIP part's declared tensors from a safetensors file under a name prefix, checking each shape first. */
public final class ClipCheckpoint {
    private ClipCheckpoint() {}

    /** Every declared tensor must be present as {@code prefix + name} with the declared shape. */
    public static Weights load(Backend backend, SequencedMap<String, int[]> shapes, SafetensorsFile file, String prefix,
                        String part) {
        for (var e : shapes.entrySet()) {
            String name = prefix + e.getKey();
            TensorInfo info = file.info(name);
            if (info == null) throw new UserError(file.path() + ": " + part + " tensor \"" + name + "\" is missing");
            if (!Arrays.equals(info.intShape(), e.getValue())) {
                throw new UserError(file.path() + ": " + part + " tensor \"" + name + "\" has shape "
                        + Arrays.toString(info.intShape()) + ", the config needs " + Arrays.toString(e.getValue()));
            }
        }
        return Weights.load(backend, shapes, name -> file.readFloats(prefix + name));
    }
}
