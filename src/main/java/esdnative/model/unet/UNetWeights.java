package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;

import java.util.ArrayList;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;

/** Loads a UNet's parameters, checking the file against the names and shapes the config implies. */
public final class UNetWeights {
    private static final int SHOWN_MISMATCHES = 5;

    private UNetWeights() {}

    /**
     * Loads every parameter of {@code config} from a diffusers {@code unet/diffusion_pytorch_model.safetensors}
     * (any float dtype; converted to float32).
     *
     * @throws UserError when the file cannot be read or does not match the config
     */
    public static Weights load(Backend be, UNetConfig config, Path file) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (TensorInfo t : st.tensors()) shapes.put(t.name(), t.intShape());
            return load(be, config, shapes, st::readFloats, file.toString());
        }
    }

    /**
     * Loads every parameter of {@code config} from a tensor source.
     *
     * @param fileShapes every tensor the file holds, name → shape
     * @param reader     a tensor's values as float32, by name
     * @param file       the file's name, for messages
     * @throws UserError when a parameter is missing or has the wrong shape, or the file holds extra tensors
     */
    public static Weights load(Backend be, UNetConfig config, Map<String, int[]> fileShapes,
                               Function<String, float[]> reader, String file) {
        SequencedMap<String, int[]> expected = UNet2DConditionModel.parameterShapes(config);
        checkNamesAndShapes(expected, fileShapes, file);
        return Weights.load(be, expected, reader);
    }

    static void checkNamesAndShapes(SequencedMap<String, int[]> expected, Map<String, int[]> fileShapes, String file) {
        List<String> problems = new ArrayList<>();
        for (var e : expected.entrySet()) {
            int[] got = fileShapes.get(e.getKey());
            if (got == null) problems.add("missing " + e.getKey());
            else if (!Arrays.equals(got, e.getValue())) {
                problems.add(e.getKey() + " has shape " + Arrays.toString(got) + ", expected " + Arrays.toString(e.getValue()));
            }
        }
        for (String name : fileShapes.keySet()) {
            if (!expected.containsKey(name)) problems.add("unexpected " + name);
        }
        if (!problems.isEmpty()) {
            String shown = String.join("; ", problems.subList(0, Math.min(SHOWN_MISMATCHES, problems.size())));
            String more = problems.size() > SHOWN_MISMATCHES ? " (and " + (problems.size() - SHOWN_MISMATCHES) + " more)" : "";
            throw new UserError(file + ": does not match the UNet config: " + shown + more);
        }
    }
}
