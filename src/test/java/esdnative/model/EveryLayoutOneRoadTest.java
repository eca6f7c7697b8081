package esdnative.model;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.checkpoint.Layout;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The same model as a diffusers folder, a single .safetensors file and a PyTorch .ckpt (the fixture's torch.save of
 * that single file), loaded by the one method, {@link ModelLoader#load}: the three give bit-identical weights.
 */
class EveryLayoutOneRoadTest {
    private final Backend be = new CpuBackend();

    @Test
    void folderSingleFileAndCkptGiveBitIdenticalWeights() {
        Path folder = Fixtures.path("tiny-sd-a");
        Path tokenizer = Fixtures.path("clip-tokenizer");
        // tiny-sd-a's norm groups and head counts are in no tensor shape: the single files take the folder's configs
        try (StableDiffusion fromFolder = ModelLoader.load(be, folder, null, null);
             StableDiffusion fromFile = ModelLoader.load(be, Fixtures.path("tiny-sd-a-single-file.safetensors"), tokenizer, folder);
             StableDiffusion fromCkpt = ModelLoader.load(be, Fixtures.path("ckpt/tiny-sd-a.ckpt"), tokenizer, folder)) {
            assertEquals(Layout.DIFFUSERS, fromFolder.layout());
            assertEquals(Layout.SINGLE_FILE, fromFile.layout());
            assertEquals(Layout.SINGLE_FILE, fromCkpt.layout());
            for (StableDiffusion other : List.of(fromFile, fromCkpt)) {
                String source = other.source().getFileName().toString();
                assertEquals(fromFolder.unet(), other.unet(), source);
                assertEquals(fromFolder.textEncoder().config(), other.textEncoder().config(), source);
                assertEquals(fromFolder.vaeScaleFactor(), other.vaeScaleFactor(), source);
                assertSameWeights(fromFolder.unetWeights(), other.unetWeights(), source + " UNet");
                assertSameWeights(fromFolder.textEncoder().weights(), other.textEncoder().weights(), source + " text encoder");
                assertSameWeights(ModelLoader.loadVae(be, fromFolder, null).weights(),
                        ModelLoader.loadVae(be, other, folder).weights(), source + " VAE");
            }
        }
    }

    /** Same names, same shapes, same float32 bits. */
    private void assertSameWeights(Weights expected, Weights actual, String what) {
        assertEquals(expected.asMap().keySet(), actual.asMap().keySet(), what);
        for (String name : expected.asMap().keySet()) {
            assertArrayEquals(expected.get(name).shape(), actual.get(name).shape(), what + " " + name);
            assertArrayEquals(bits(be.toHost(expected.get(name))), bits(be.toHost(actual.get(name))), what + " " + name);
        }
    }

    private static int[] bits(float[] values) {
        int[] bits = new int[values.length];
        for (int i = 0; i < values.length; i++) bits[i] = Float.floatToRawIntBits(values[i]);
        return bits;
    }
}
