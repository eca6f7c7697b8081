package esdnative.model.vae;

import esdnative.backend.Backend;
import esdnative.checkpoint.ExpectedTensors;
import esdnative.model.Weights;
import esdnative.util.UserError;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;

/**
 * Loads the VAE decoder's parameters from an AutoencoderKL weight file. The encoder's tensors are ignored.
 * Files saved by diffusers before 0.14 name the mid-block attention query/key/value/proj_attn; those are read as
 * to_q/to_k/to_v/to_out.0 (the renaming diffusers itself applies on load).
 */
public final class VaeWeights {
    private static final Map<String, String> LEGACY_ATTENTION = Map.of(
            ".to_q.", ".query.", ".to_k.", ".key.", ".to_v.", ".value.", ".to_out.0.", ".proj_attn.");

    private VaeWeights() {}

    /**
     * @param fileShapes every tensor the file holds, name → shape
     * @param reader     a tensor's values as float32, by file name
     * @param file       the file's name, for messages
     * @throws UserError when a decoder tensor is missing, has the wrong shape, or is not one the config implies
     */
    public static Weights load(Backend be, VaeConfig config, Map<String, int[]> fileShapes,
                               Function<String, float[]> reader, String file) {
        SequencedMap<String, int[]> expected = VaeDecoder.parameterShapes(config);
        // the decoder side of the file by the names the config uses (pre-0.14 attention names renamed); the encoder's
        // tensors are another part, not read
        Map<String, String> fileNameOf = new HashMap<>();
        Map<String, int[]> found = new LinkedHashMap<>();
        for (String name : expected.keySet()) {
            String stored = fileName(name, fileShapes);
            if (!fileShapes.containsKey(stored)) continue;
            fileNameOf.put(name, stored);
            found.put(name, fileShapes.get(stored));
        }
        for (var e : fileShapes.entrySet()) {
            boolean decoderSide = e.getKey().startsWith("decoder.") || e.getKey().startsWith("post_quant_conv.");
            if (decoderSide && !fileNameOf.containsValue(e.getKey())) found.put(e.getKey(), e.getValue());
        }
        ExpectedTensors.check(expected, found, ExpectedTensors.Extras.REFUSED, file, "VAE");
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
