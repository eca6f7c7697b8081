package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.testing.FixtureWeights;
import esdnative.util.UserError;
import esdnative.model.Weights;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UNetWeightsTest {
    private final Backend be = new CpuBackend();
    private final UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));

    private Map<String, int[]> expectedShapes() {
        return new LinkedHashMap<>(UNet2DConditionModel.parameterShapes(config));
    }

    private UserError loadFails(Map<String, int[]> shapes) {
        return assertThrows(UserError.class, () -> UNetWeights.load(be, config, shapes,
                name -> new float[(int) Arrays.stream(shapes.get(name)).asLongStream().reduce(1, (a, b) -> a * b)],
                "unet.safetensors"));
    }

    @Test
    void loadsTheFixtureFileByName() {
        Weights w = FixtureWeights.unet(be, config, Fixtures.path("tiny-sd-a"));
        assertEquals(UNet2DConditionModel.parameterShapes(config).size(), w.asMap().size());
        assertArrayEquals(new int[] {32, 4, 3, 3}, w.get("conv_in.weight").shape());
    }

    @Test
    void missingWrongShapedAndUnexpectedTensorsAreNamed() {
        Map<String, int[]> shapes = expectedShapes();
        shapes.remove("conv_in.bias");
        UserError e = loadFails(shapes);
        assertTrue(e.getMessage().startsWith("unet.safetensors: ") && e.getMessage().contains("missing conv_in.bias"),
                e.getMessage());

        shapes = expectedShapes();
        shapes.put("conv_out.weight", new int[] {4, 32, 1, 1});
        e = loadFails(shapes);
        assertTrue(e.getMessage().contains("conv_out.weight has shape [4, 32, 1, 1], expected [4, 32, 3, 3]"), e.getMessage());

        shapes = expectedShapes();
        for (int i = 0; i < 7; i++) shapes.put("extra." + i, new int[] {1});
        e = loadFails(shapes);
        assertTrue(e.getMessage().contains("unexpected extra.0") && e.getMessage().contains("(and 2 more)"), e.getMessage());
    }

    @Test
    void aFileThatIsNotThereIsAUserError() {
        assertThrows(UserError.class, () -> FixtureWeights.unet(be, config, Path.of("no/such/unet.safetensors")));
    }
}
