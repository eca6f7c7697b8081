package esdnative.model.vae;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;

import java.util.ArrayList;
import java.util.HashMap;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;

/**
 * Loads the VAE decoder's parameters from an AutoencoderKL weight file. The encoder's tensors are ignored.
 * Files saved by diffusers before 0.14 name the mid-block attention query/key/value/proj_attn; those are read as
 * to_q/to_k/to_v/to_out.0 (the renaming diffusers itself applies on load).
 */
public final class VaeWeights {
    private static final int SHOWN_MISMATCHES = 5;
    private static final Map<String, String> LEGACY_ATTENTION = Map.of(
            ".to_q.", ".query.", ".to_k.", ".key.", ".to_v.", ".value.", ".to_out.0.", ".proj_attn.");

    private VaeWeights() {}

    /**
     * Loads the decoder from a diffusers {@code vae/diffusion_pytorch_model.safetensors} (any float dtype).
     *
     * @throws UserError when the file cannot be read or does not match the config
     */
    public static Weights load(Backend be, VaeConfig config, Path file) {
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (TensorInfo t : st.tensors()) shapes.put(t.name(), t.intShape());
            return load(be, config, shapes, st::readFloats, file.toString());
        }
    }

    /**
     * @param fileShapes every tensor the file holds, name → shape
     * @param reader     a tensor's values as float32, by file name
     * @param file       the file's name, for messages
     * @throws UserError when a decoder tensor is missing, has the wrong shape, or is not one the config implies
     */
    public static Weights load(Backend be, VaeConfig config, Map<String, int[]> fileShapes,
                               Function<String, float[]> reader, String file) {
        SequencedMap<String, int[]> expected = VaeDecoder.parameterShapes(config);
        List<String> problems = new ArrayList<>();
        Map<String, String> fileNameOf = new HashMap<>();
        for (var e : expected.entrySet()) {
            String name = fileName(e.getKey(), fileShapes);
            int[] got = fileShapes.get(name);
            if (got == null) problems.add("missing " + e.getKey());
            else if (!Arrays.equals(got, e.getValue())) {
                problems.add(name + " has shape " + Arrays.toString(got) + ", expected " + Arrays.toString(e.getValue()));
            }
            fileNameOf.put(e.getKey(), name);
        }
        for (String name : fileShapes.keySet()) {
            boolean decoderSide = name.startsWith("decoder.") || name.startsWith("post_quant_conv.");
            if (decoderSide && !fileNameOf.containsValue(name)) problems.add("unexpected " + name);
        }
        if (!problems.isEmpty()) {
            String shown = String.join("; ", problems.subList(0, Math.min(SHOWN_MISMATCHES, problems.size())));
            String more = problems.size() > SHOWN_MISMATCHES ? " (and " + (problems.size() - SHOWN_MISMATCHES) + " more)" : "";
            throw new UserError(file + ": does not match the VAE config: " + shown + more);
        }
        return Weights.load(be, expected, name -> reader.apply(fileNameOf.get(name)));
    }

    /** The name a decoder parameter has in this file: its own, or its pre-0.14 attention name. */
    private static String fileName(String name, Map<String, int[]> fileShapes) {
        if (fileShapes.containsKey(name) || !name.contains(".attentions.")) return name;
        for (var e : LEGACY_ATTENTION.entrySet()) {
            if (name.contains(e.getKey())) {
                String legacy = name.replace(".attentions.0" + e.getKey(), ".attentions.0" + e.getValue());
                if (fileShapes.containsKey(legacy)) return legacy;
            }
        }
        return name;
    }
}
