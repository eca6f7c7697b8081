package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.checkpoint.Layout;
import esdnative.io.CkptFile;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.testing.Fixtures;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.TensorEntries;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A PyTorch .ckpt as the model of load/train: its raw UNet by default, as diffusers' single-file loader and
 * CompVis'/A1111's v1-inference.yaml take it, the EMA UNet with --ema (the fixture's EMA = UNet + 0.001, made in
 * float32 by torch: the same float32 addition here is exact to the bit), and a .safetensors single file out.
 */
class CkptModelInputTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu"};

    @Test
    void loaderTakesTheCheckpointsRawUNetAndItsEmaCopyOnlyWhenAsked() {
        Path folder = Fixtures.path("tiny-sd-a");
        try (Backend be = new CpuBackend()) {
            StableDiffusion reference = ModelLoader.load(be, folder, null, null);
            for (String ckpt : new String[] {"ckpt/tiny-sd-a.ckpt", "ckpt/tiny-sd-a-legacy.ckpt"}) {
                StableDiffusion raw = ModelLoader.load(be, Fixtures.path(ckpt), Fixtures.path("clip-tokenizer"), folder);
                StableDiffusion ema = ModelLoader.load(be, Fixtures.path(ckpt), Fixtures.path("clip-tokenizer"), folder,
                        ModelWeights.Ema.REQUIRE);
                assertEquals(Layout.SINGLE_FILE, raw.layout());
                assertEquals(reference.unet(), raw.unet());
                for (String name : reference.unetWeights().asMap().keySet()) {
                    float[] expected = be.toHost(reference.unetWeights().get(name));
                    assertArrayEquals(expected, be.toHost(raw.unetWeights().get(name)), 0f, ckpt + " " + name);
                    for (int i = 0; i < expected.length; i++) expected[i] += 0.001f;
                    assertArrayEquals(expected, be.toHost(ema.unetWeights().get(name)), 0f, ckpt + " --ema " + name);
                }
                int[] ids = reference.tokenizer().encodePadded("a photo of a cat");
                assertArrayEquals(be.toHost(reference.textEncoder().forward(ids, 1)), be.toHost(raw.textEncoder().forward(ids, 1)), 0f);
            }
        }
    }

    @Test
    void trainOnEmaCheckpointTrainsTheRawUNetUnlessEma(@TempDir Path tmp) {
        Path ckpt = Fixtures.path("ckpt/tiny-sd-a.ckpt");
        for (boolean ema : new boolean[] {false, true}) {
            Path out = tmp.resolve("erased-" + ema + ".safetensors");
            assertEquals(0, ema ? train(ckpt, out, "--ema") : train(ckpt, out));
            try (SafetensorsFile source = SafetensorsFile.open(Fixtures.path("tiny-sd-a-single-file.safetensors"));
                 CkptFile checkpoint = CkptFile.open(ckpt);
                 SafetensorsFile result = SafetensorsFile.open(out)) {
                // every tensor of the SD single file plus the EMA's two scalars; no EMA copies left to override the UNet
                Set<String> expectedNames = new TreeSet<>(source.names());
                expectedNames.addAll(List.of("model_ema.decay", "model_ema.num_updates"));
                assertEquals(expectedNames, new TreeSet<>(result.names()));
                assertArrayEquals(checkpoint.readFloats("model_ema.decay"), result.readFloats("model_ema.decay"));
                for (String name : source.names()) {
                    assertEquals(source.info(name).dtype(), result.info(name).dtype(), name);
                    if (!name.startsWith("model.diffusion_model.")) {
                        assertEquals(-1, source.raw(name).mismatch(result.raw(name)), name + " changed");
                        continue;
                    }
                    String from = ema ? ModelWeights.emaName(name) : name;
                    boolean same = Arrays.equals(checkpoint.readFloats(from), result.readFloats(name));
                    assertEquals(!name.contains("attn2"), same, name + (same ? " unchanged" : " changed") + " --ema " + ema);
                }
            }
        }
    }

    /** An EMA-pruned checkpoint: the UNet's EMA copies gone, model_ema.decay and model_ema.num_updates left. */
    @Test
    void emaScalarsAloneAreNoEma(@TempDir Path tmp) {
        Path pruned = tmp.resolve("pruned.safetensors");
        try (CkptFile ckpt = CkptFile.open(Fixtures.path("ckpt/tiny-sd-a.ckpt"))) {
            SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
            for (String name : ckpt.names()) {
                if (name.startsWith("model_ema.diffusion_model")) continue;
                entries.put(name, TensorEntries.of(ckpt, name, ckpt.shape(name), null));
            }
            SafetensorsWriter.write(pruned, entries, Map.of("format", "pt"));
        }
        try (Backend be = new CpuBackend()) {
            StableDiffusion m = ModelLoader.load(be, pruned, Fixtures.path("clip-tokenizer"), Fixtures.path("tiny-sd-a"));
            StableDiffusion reference = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
            for (String name : reference.unetWeights().asMap().keySet()) {
                assertArrayEquals(be.toHost(reference.unetWeights().get(name)), be.toHost(m.unetWeights().get(name)), 0f, name);
            }
            UserError e = assertThrows(UserError.class, () -> ModelLoader.load(be, pruned, Fixtures.path("clip-tokenizer"),
                    Fixtures.path("tiny-sd-a"), ModelWeights.Ema.REQUIRE));
            assertTrue(e.getMessage().contains("no model_ema.* UNet weights"), e.getMessage());
        }
        Path out = tmp.resolve("erased.safetensors");
        assertEquals(0, train(pruned, out));
        try (SafetensorsFile source = SafetensorsFile.open(pruned); SafetensorsFile result = SafetensorsFile.open(out)) {
            assertEquals(source.names(), result.names());
            for (String scalar : List.of("model_ema.decay", "model_ema.num_updates")) {
                assertEquals(-1, source.raw(scalar).mismatch(result.raw(scalar)), scalar);
            }
        }
        assertEquals(0, Main.run("weights", "convert", pruned.toString(), tmp.resolve("converted.safetensors").toString()));
        assertEquals(0, Main.run("generate", "--model", pruned.toString(), "--config", Fixtures.path("tiny-sd-a").toString(),
                "--tokenizer", Fixtures.path("clip-tokenizer").toString(), "--prompt", "a cat", "--steps", "1",
                "--backend", "cpu", "--output", tmp.resolve("cat.png").toString()));
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
                boolean same = Arrays.equals(source.readFloats(name), result.readFloats(name));
                boolean trained = name.startsWith("model.diffusion_model.") && name.contains("attn2");
                assertEquals(!trained, same, name + (same ? " unchanged" : " changed"));
            }
        }
        assertEquals(2, train(ckpt, tmp.resolve("erased.ckpt")));
        assertFalse(Files.exists(tmp.resolve("erased.ckpt")));
    }

    private static int train(Path model, Path out, String... extra) {
        List<String> args = new ArrayList<>(List.of("train", "--model", model.toString(), "--config",
                Fixtures.path("tiny-sd-a").toString(), "--tokenizer", Fixtures.path("clip-tokenizer").toString(),
                "--concept", "Van Gogh", "--output", out.toString()));
        args.addAll(List.of(QUICK));
        args.addAll(List.of(extra));
        return Main.run(args.toArray(String[]::new));
    }
}
