package esdnative.testing;

import esdnative.backend.Backend;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Weights;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Loads a diffusers UNet safetensors file for tests. */
public final class UNets {
    private UNets() {}

    public static Weights load(Backend be, UNetConfig config, Path file) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (TensorInfo info : f.tensors()) {
                shapes.put(info.name(), Arrays.stream(info.shape()).mapToInt(Math::toIntExact).toArray());
            }
            return UNetWeights.load(be, config, shapes, f::readFloats, file.toString());
        }
    }
}
