package esdnative.lora;

import esdnative.cli.Main;
import esdnative.io.Npy;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code train --format lora}, {@code weights extract-lora} and {@code generate --lora} end to end on tiny-sd-a, with
 * esd-x-strict (to_k/to_v only: no bias changes, so a full-rank float32 LoRA is the whole erasure).
 */
class LoraCommandsTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu",
            "--method", "esd-x-strict", "--concept", "Van Gogh"};

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void trainExtractAndGenerateAgree(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        Path erased = tmp.resolve("erased"), trainedLora = tmp.resolve("trained-lora.safetensors");
        Path extracted = tmp.resolve("extracted.safetensors");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", model, "--output", erased.toString()}, QUICK)));
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", model, "--output", trainedLora.toString(),
                "--format", "lora", "--lora-rank", "full", "--lora-dtype", "fp32"}, QUICK)));
        assertEquals(0, Main.run("weights", "extract-lora", model, erased.toString(), extracted.toString(), "--rank", "full", "--dtype", "fp32"));
        // the same run's change, from the trainer's memory or from the written model: the same tensors, byte for byte
        try (SafetensorsFile a = SafetensorsFile.open(trainedLora); SafetensorsFile b = SafetensorsFile.open(extracted)) {
            assertEquals(a.names(), b.names());
            assertEquals(12 * 3, a.names().size());   // to_k and to_v of 6 transformer blocks (2 down, 1 mid, 3 up)
            for (String n : a.names()) assertEquals(-1, a.raw(n).mismatch(b.raw(n)), n);
            assertEquals(a.metadata().get("esd.lora.residuals"), b.metadata().get("esd.lora.residuals"));
            assertEquals("xattn-strict", a.metadata().get("esd.method"));
        }
        // generate: the base model with the LoRA samples as the erased model does (float32 LoRA, exact up to rounding)
        Path viaLora = tmp.resolve("lora.npy"), viaErased = tmp.resolve("erased.npy");
        String[] gen = {"generate", "--prompt", "a painting by Van Gogh", "--steps", "2", "--seed", "3", "--backend", "cpu"};
        assertEquals(0, Main.run(concat(gen, "--model", model, "--lora", trainedLora + ":1.0", "--output",
                tmp.resolve("a.png").toString(), "--save-latents", viaLora.toString())));
        assertEquals(0, Main.run(concat(gen, "--model", erased.toString(), "--output", tmp.resolve("b.png").toString(),
                "--save-latents", viaErased.toString())));
        float[] x = Npy.read(viaLora).floats(), y = Npy.read(viaErased).floats();
        for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], 1e-5, "latent " + i);   // the fixture's f32 level
        // scale 0 is the base model
        Path viaZero = tmp.resolve("zero.npy"), viaBase = tmp.resolve("base.npy");
        assertEquals(0, Main.run(concat(gen, "--model", model, "--lora", trainedLora + ":0", "--output",
                tmp.resolve("c.png").toString(), "--save-latents", viaZero.toString())));
        assertEquals(0, Main.run(concat(gen, "--model", model, "--output", tmp.resolve("d.png").toString(), "--save-latents", viaBase.toString())));
        assertArrayEquals(Npy.read(viaBase).floats(), Npy.read(viaZero).floats());
    }

    @Test
    void badInputIsOneLineAndExit2(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        String[] gen = {"generate", "--model", model, "--prompt", "x", "--steps", "1", "--backend", "cpu", "--output", tmp.resolve("x.png").toString()};
        assertEquals(2, Main.run(concat(gen, "--lora", tmp.resolve("missing.safetensors").toString())));
        // a text-encoder module is refused, not skipped
        Path te = tmp.resolve("te.safetensors");
        Map<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
        entries.put("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
                SafetensorsWriter.Entry.floats(esdnative.io.DType.F32, new long[] {1, 32}, new float[32]));
        SafetensorsWriter.write(te, new java.util.LinkedHashMap<>(entries), Map.of());
        assertEquals(2, Main.run(concat(gen, "--lora", te.toString())));
        assertFalse(Files.exists(tmp.resolve("x.png")));
        assertEquals(2, Main.run("weights", "extract-lora", model, model, tmp.resolve("o.safetensors").toString(), "--rank", "0"));
        // nothing changed: nothing to write, and no file
        assertEquals(2, Main.run("weights", "extract-lora", model, model, tmp.resolve("o.safetensors").toString()));
        assertFalse(Files.exists(tmp.resolve("o.safetensors")));
    }
}
