package esdnative.cli;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.CkptFile;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.testing.Fixtures;
import esdnative.weights.ModelWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A PyTorch .ckpt as the model of load/train: the EMA UNet by default (the fixture's EMA = UNet + 0.001, made in
 * float32 by torch: the same float32 addition here is exact to the bit), and a .safetensors single file out.
 */
class CkptModelInputTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu"};

    @Test
    void loaderTakesTheCheckpointsEmaUNet() {
        Path folder = Fixtures.path("tiny-sd-a");
        try (Backend be = new CpuBackend()) {
            StableDiffusion reference = ModelLoader.load(be, folder, null, null);
            for (String ckpt : new String[] {"ckpt/tiny-sd-a.ckpt", "ckpt/tiny-sd-a-legacy.ckpt"}) {
                StableDiffusion m = ModelLoader.load(be, Fixtures.path(ckpt), Fixtures.path("clip-tokenizer"), folder);
                assertEquals(StableDiffusion.Layout.SINGLE_FILE, m.layout());
                assertEquals(reference.unet(), m.unet());
                for (String name : reference.unetWeights().asMap().keySet()) {
                    float[] expected = be.toHost(reference.unetWeights().get(name));
                    for (int i = 0; i < expected.length; i++) expected[i] += 0.001f;
                    assertArrayEquals(expected, be.toHost(m.unetWeights().get(name)), 0f, ckpt + " " + name);
                }
                int[] ids = reference.tokenizer().encodePadded("a photo of a cat");
                assertArrayEquals(be.toHost(reference.textEncoder().forward(ids, 1)), be.toHost(m.textEncoder().forward(ids, 1)), 0f);
            }
        }
    }

    @Test
    void trainOnEmaCheckpointWritesACompleteSafetensorsSingleFile(@TempDir Path tmp) {
        Path ckpt = Fixtures.path("ckpt/tiny-sd-a.ckpt");
        Path out = tmp.resolve("erased.safetensors");
        assertEquals(0, train(ckpt, out));
        try (SafetensorsFile source = SafetensorsFile.open(Fixtures.path("tiny-sd-a-single-file.safetensors"));
             CkptFile checkpoint = CkptFile.open(ckpt);
             SafetensorsFile result = SafetensorsFile.open(out)) {
            // every tensor of the SD single file, no EMA copies left to override the trained UNet
            assertEquals(source.names(), result.names());
            for (String name : source.names()) {
                assertEquals(source.info(name).dtype(), result.info(name).dtype(), name);
                if (!name.startsWith("model.diffusion_model.")) {
                    assertEquals(-1, source.raw(name).mismatch(result.raw(name)), name + " changed");
                    continue;
                }
                boolean same = java.util.Arrays.equals(checkpoint.readFloats(ModelWeights.emaName(name)), result.readFloats(name));
                assertEquals(!name.contains("attn2"), same, name + (same ? " unchanged" : " changed"));
            }
        }
    }

    @Test
    void trainOnHalfCheckpointKeepsHalfPrecision(@TempDir Path tmp) {
        Path ckpt = Fixtures.path("ckpt/tiny-sd-a-fp16.ckpt");
        Path out = tmp.resolve("erased16.safetensors");
        assertEquals(0, train(ckpt, out));
        try (CkptFile source = CkptFile.open(ckpt); SafetensorsFile result = SafetensorsFile.open(out)) {
            assertEquals(source.names(), result.names());
            for (String name : source.names()) {
                assertEquals(source.dtype(name), result.info(name).dtype(), name);
                if (source.dtype(name).isFloating()) assertEquals(DType.F16, result.info(name).dtype(), name);
                boolean same = java.util.Arrays.equals(source.readFloats(name), result.readFloats(name));
                boolean trained = name.startsWith("model.diffusion_model.") && name.contains("attn2");
                assertEquals(!trained, same, name + (same ? " unchanged" : " changed"));
            }
        }
        assertEquals(2, train(ckpt, tmp.resolve("erased.ckpt")));
        assertFalse(Files.exists(tmp.resolve("erased.ckpt")));
    }

    private static int train(Path model, Path out) {
        String[] args = {"train", "--model", model.toString(), "--config", Fixtures.path("tiny-sd-a").toString(),
                "--tokenizer", Fixtures.path("clip-tokenizer").toString(), "--concept", "Van Gogh", "--output", out.toString()};
        String[] all = new String[args.length + QUICK.length];
        System.arraycopy(args, 0, all, 0, args.length);
        System.arraycopy(QUICK, 0, all, args.length, QUICK.length);
        return Main.run(all);
    }
}
