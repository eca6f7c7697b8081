package esdnative.model.vae;

import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.vae.VaeConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AutoencoderShapesTest {
    @Test
    void stableDiffusionVaeHasDiffusersParameterCount() {
        // AutoencoderKL.from_pretrained("CompVis/stable-diffusion-v1-4", subfolder="vae") has 83,653,863 parameters
        assertEquals(83_653_863L, AutoencoderShapes.count(AutoencoderShapes.all(VaeConfig.sd())));
    }

    @Test
    void tinyFixtureVaeHasExactlyTheseNamesAndShapes() {
        VaeConfig config = VaeConfig.fromJson(Fixtures.path("tiny-sd-a/vae/config.json"));
        SequencedMap<String, int[]> expected = AutoencoderShapes.all(config);
        Map<String, int[]> actual = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(Fixtures.path("tiny-sd-a/vae/diffusion_pytorch_model.safetensors"))) {
            for (TensorInfo t : f.tensors()) actual.put(t.name(), t.intShape());
        }
        assertEquals(new java.util.TreeSet<>(actual.keySet()), new java.util.TreeSet<>(expected.keySet()));
        expected.forEach((name, shape) -> assertTrue(Arrays.equals(shape, actual.get(name)),
                name + ": " + Arrays.toString(shape) + " vs " + Arrays.toString(actual.get(name))));
    }
}
