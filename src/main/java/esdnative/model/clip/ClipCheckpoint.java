package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.checkpoint.ExpectedTensors;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;

/** Loads a CLIP part's declared tensors from a safetensors file under a name prefix, checking each shape first. */
public final class ClipCheckpoint {
    private ClipCheckpoint() {}

    /** Every declared tensor must be present as {@code prefix + name} with the declared shape (others are not read). */
    public static Weights load(Backend backend, SequencedMap<String, int[]> shapes, SafetensorsFile file, String prefix,
                        String part) {
        Map<String, int[]> found = new LinkedHashMap<>();
        for (String name : shapes.keySet()) {
            TensorInfo info = file.info(prefix + name);
            if (info != null) found.put(name, info.intShape());
        }
        ExpectedTensors.check(shapes, found, ExpectedTensors.Extras.IGNORED, file.path() + " (" + prefix + "*)", part);
        return Weights.load(backend, shapes, name -> file.readFloats(prefix + name));
    }
}
