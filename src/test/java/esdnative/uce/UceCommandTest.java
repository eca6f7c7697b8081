package esdnative.uce;

import esdnative.cli.Main;
import esdnative.io.CkptFile;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code esd-native uce} end to end on tiny-sd-a: the authors' file (key set and values), outputs written as
 * {@code train} writes them (only the edited tensors change, dtype kept), and one-line refusals of bad input.
 */
class UceCommandTest {

    @Test
    void trainedOnlyIsTheAuthorsFile(@TempDir Path tmp) {
        Path out = tmp.resolve("uce.safetensors");
        assertEquals(0, Main.run("uce", "--model", Fixtures.path("tiny-sd-a").toString(), "--erase", "Van Gogh",
                "--erase", "Picasso", "--guide", "art", "--preserve", "Monet", "Rembrandt", "--preserve", "Warhol",
                "--format", "trained-only", "--output", out.toString()));
        Path authors = Fixtures.path(UceGoldens.DIR).resolve("erase_multi_preserve/uce.safetensors");
        try (SafetensorsFile theirs = SafetensorsFile.open(authors); SafetensorsFile ours = SafetensorsFile.open(out)) {
            assertEquals(new TreeSet<>(theirs.names()), new TreeSet<>(ours.names()));
            for (String name : theirs.names()) {
                assertEquals(theirs.dtype(name), ours.dtype(name), name);
                assertArrayEquals(theirs.shape(name), ours.shape(name), name);
                Goldens.assertClose(name, theirs.readFloats(name), ours.readFloats(name),
                        UceGoldens.atol("erase_multi_preserve/new__" + name));
            }
        }
    }

    @Test
    void diffusersOutputChangesOnlyTheEditedTensors(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sd-a");
        Path out = tmp.resolve("erased");
        Path concepts = tmp.resolve("concepts.txt");
        write(concepts, "Van Gogh\n\n");
        assertEquals(0, Main.run("uce", "--model", source.toString(), "--erase-file", concepts.toString(),
                "--output", out.toString()));
        try (SafetensorsFile a = SafetensorsFile.open(source.resolve("unet/diffusion_pytorch_model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(out.resolve("unet/diffusion_pytorch_model.safetensors"))) {
            assertEquals(a.names(), b.names());
            Set<String> changed = new TreeSet<>(), expected = new TreeSet<>();
            for (String name : a.names()) {
                if (UceEdit.isEdited(name)) expected.add(name);
                if (a.raw(name).mismatch(b.raw(name)) != -1) changed.add(name);
            }
            assertEquals(12, expected.size());
            assertEquals(expected, changed);
            for (String name : expected) {
                float[] golden = UceGoldens.floats("erase_single/new__" + name);
                assertArrayEquals(golden, b.readFloats(name), (float) UceGoldens.atol("erase_single/new__" + name), name);
            }
            assertEquals("Van Gogh", b.metadata().get("uce.erase"));
        }
        try (SafetensorsFile a = SafetensorsFile.open(source.resolve("text_encoder/model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(out.resolve("text_encoder/model.safetensors"))) {
            for (String name : a.names()) assertEquals(-1, a.raw(name).mismatch(b.raw(name)), name);
        }
    }

    @Test
    void singleFileInGivesSingleFileOutWithOnlyKeysAndValuesChanged(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sd-a-single-file.safetensors");
        Path out = tmp.resolve("erased.safetensors");
        assertEquals(0, Main.run("uce", "--model", source.toString(), "--config", Fixtures.path("tiny-sd-a").toString(),
                "--tokenizer", Fixtures.path("clip-tokenizer").toString(), "--erase", "Van Gogh", "--form", "2023",
                "--output", out.toString()));
        try (SafetensorsFile a = SafetensorsFile.open(source); SafetensorsFile b = SafetensorsFile.open(out)) {
            assertEquals(a.names(), b.names());
            int changed = 0;
            for (String name : a.names()) {
                boolean edited = name.startsWith("model.diffusion_model.") && name.contains("attn2")
                        && (name.endsWith("to_k.weight") || name.endsWith("to_v.weight"));
                assertEquals(!edited, a.raw(name).mismatch(b.raw(name)) == -1, name);
                if (edited) changed++;
            }
            assertEquals(12, changed);
            assertEquals("2023", b.metadata().get("uce.form"));
        }
    }

    @Test
    void halfPrecisionCheckpointStaysHalf(@TempDir Path tmp) {
        Path ckpt = Fixtures.path("ckpt/tiny-sd-a-fp16.ckpt");
        Path out = tmp.resolve("erased16.safetensors");
        assertEquals(0, Main.run("uce", "--model", ckpt.toString(), "--config", Fixtures.path("tiny-sd-a").toString(),
                "--tokenizer", Fixtures.path("clip-tokenizer").toString(), "--erase", "Van Gogh", "--output", out.toString()));
        try (CkptFile source = CkptFile.open(ckpt); SafetensorsFile result = SafetensorsFile.open(out)) {
            assertEquals(source.names(), result.names());
            for (String name : source.names()) {
                assertEquals(source.dtype(name), result.info(name).dtype(), name);
                if (source.dtype(name).isFloating()) assertEquals(DType.F16, result.info(name).dtype(), name);
                boolean same = Arrays.equals(source.readFloats(name), result.readFloats(name));
                boolean edited = name.startsWith("model.diffusion_model.") && name.contains("attn2")
                        && (name.endsWith("to_k.weight") || name.endsWith("to_v.weight"));
                assertEquals(!edited, same, name + (same ? " unchanged" : " changed"));
            }
        }
    }

    @Test
    void badInputIsOneLineAndExitTwo(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        Path out = tmp.resolve("out");
        Path existing = tmp.resolve("exists");
        existing.toFile().mkdirs();
        String o = out.toString();
        String[][] bad = {
                {"uce", "--model", model, "--output", o},
                {"uce", "--model", model, "--erase", " ", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--erase", "b", "--guide-per-concept", "x", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--guide", "x", "--guide-per-concept", "y", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--lamb", "0", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--erase-scale", "-1", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--form", "2024", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--format", "ckpt", "--output", o},
                {"uce", "--model", model, "--erase-file", tmp.resolve("none.txt").toString(), "--output", o},
                {"uce", "--model", tmp.resolve("missing").toString(), "--erase", "a", "--output", o},
                {"uce", "--model", model, "--erase", "a", "--output", existing.toString()},
                {"uce", "--model", model, "--erase", "a", "--format", "single-file", "--output", tmp.resolve("x.ckpt").toString()},
        };
        for (String[] args : bad) assertEquals(2, Main.run(args), String.join(" ", args));
        assertFalse(Files.exists(out), "no output after refused input");
        assertFalse(Files.exists(tmp.resolve("x.ckpt")));
    }

    /** UCE's change of one erased concept has rank 1 per tensor: a rank-8 LoRA of it is the edit itself. */
    @Test
    void loraOutputAppliedToTheBaseIsTheEditedModel(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        Path lora = tmp.resolve("uce-lora.safetensors"), edited = tmp.resolve("uce.safetensors");
        assertEquals(0, Main.run("uce", "--model", model, "--erase", "Van Gogh", "--format", "lora", "--lora-dtype", "fp32",
                "--output", lora.toString()));
        assertEquals(0, Main.run("uce", "--model", model, "--erase", "Van Gogh", "--format", "trained-only",
                "--output", edited.toString()));
        try (SafetensorsFile base = SafetensorsFile.open(Fixtures.path("tiny-sd-a").resolve("unet/diffusion_pytorch_model.safetensors"));
             SafetensorsFile ours = SafetensorsFile.open(edited); SafetensorsFile factors = SafetensorsFile.open(lora)) {
            assertEquals(3 * ours.names().size(), factors.names().size(), "down, up and alpha per edited tensor");
            for (String name : ours.names()) {
                String module = "lora_unet_" + name.substring(0, name.length() - ".weight".length()).replace('.', '_');
                long[] upShape = factors.shape(module + ".lora_up.weight"), downShape = factors.shape(module + ".lora_down.weight");
                int rows = (int) upShape[0], rank = (int) upShape[1], cols = (int) downShape[1];
                float[] up = factors.readFloats(module + ".lora_up.weight"), down = factors.readFloats(module + ".lora_down.weight");
                double scale = factors.readFloats(module + ".alpha")[0] / rank;
                float[] w = base.readFloats(name), want = ours.readFloats(name);
                double maxDelta = 0, maxError = 0;
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        double sum = 0;
                        for (int r = 0; r < rank; r++) sum += (double) up[i * rank + r] * down[r * cols + j];
                        maxDelta = Math.max(maxDelta, Math.abs(want[i * cols + j] - w[i * cols + j]));
                        maxError = Math.max(maxError, Math.abs(w[i * cols + j] + scale * sum - want[i * cols + j]));
                    }
                }
                assertTrue(maxDelta > 0, name + " was not edited");
                // float32 factors of a rank-1 change: off by float rounding of W + ΔW, not by truncation
                assertTrue(maxError <= 1e-5 * maxDelta + 1e-6, name + ": LoRA off by " + maxError + " (edit " + maxDelta + ")");
            }
        }
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
