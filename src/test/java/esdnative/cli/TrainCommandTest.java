package esdnative.cli;

import esdnative.esd.TrainMethod;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.esd.TrainedNames;
import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.*;

/** `esd-native train` end to end on tiny-sd-a: what it changes, what it writes, how it refuses bad input. */
class TrainCommandTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu"};

    @Test
    void everyMethodChangesExactlyTheTensorsItSelects(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sd-a");
        Path sourceUnet = source.resolve("unet/diffusion_pytorch_model.safetensors");
        for (TrainMethod m : TrainMethod.values()) {
            Path out = tmp.resolve(m.id());
            String[] args = concat(new String[] {"train", "--model", source.toString(), "--concept", "a photo of a cat",
                    "--method", m.id(), "--output", out.toString()}, QUICK);
            if (m == TrainMethod.XLAYER || m == TrainMethod.SELFLAYER) {
                // their rules name blocks (output_blocks.6/8, input_blocks.4/7 with attention) a 2-level UNet lacks
                assertEquals(2, Main.run(args), m.id());
                continue;
            }
            assertEquals(0, Main.run(args), m.id());
            try (SafetensorsFile a = SafetensorsFile.open(sourceUnet);
                 SafetensorsFile b = SafetensorsFile.open(out.resolve("unet/diffusion_pytorch_model.safetensors"))) {
                assertEquals(a.names(), b.names());
                Predicate<String> selected = TrainedNames.selector(m, a.names());
                Set<String> changed = new TreeSet<>(), expected = new TreeSet<>();
                for (TensorInfo info : a.tensors()) {
                    if (selected.test(info.name())) expected.add(info.name());
                    if (a.raw(info.name()).mismatch(b.raw(info.name())) != -1) changed.add(info.name());
                }
                assertFalse(expected.isEmpty(), m.id());
                assertEquals(expected, changed, m.id());
            }
            // the other components are carried over unchanged
            assertEquals(-1, mismatch(source.resolve("text_encoder/model.safetensors"), out.resolve("text_encoder/model.safetensors")));
            assertTrue(Files.isRegularFile(out.resolve("unet/config.json")));
        }
    }

    @Test
    void singleFileInGivesSingleFileOutWithTextEncoderAndVaeUntouched(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sd-a-single-file.safetensors");
        Path out = tmp.resolve("erased.safetensors");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", source.toString(), "--config",
                Fixtures.path("tiny-sd-a").toString(), "--tokenizer", Fixtures.path("clip-tokenizer").toString(),
                "--concept", "Van Gogh", "--output", out.toString()}, QUICK)));
        try (SafetensorsFile a = SafetensorsFile.open(source); SafetensorsFile b = SafetensorsFile.open(out)) {
            assertEquals(a.names(), b.names());
            for (String name : a.names()) {
                boolean same = a.raw(name).mismatch(b.raw(name)) == -1;
                if (name.startsWith("cond_stage_model.") || name.startsWith("first_stage_model.") || !name.contains("attn2")) {
                    assertTrue(same, name + " changed");
                } else {
                    assertFalse(same, name + " unchanged");
                }
            }
            assertEquals("xattn", b.metadata().get("esd.method"));
        }
        // trained-only: just the cross-attention tensors, diffusers names
        Path small = tmp.resolve("trained.safetensors");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", Fixtures.path("tiny-sd-a").toString(),
                "--concept", "Van Gogh", "--format", "trained-only", "--output", small.toString()}, QUICK)));
        try (SafetensorsFile f = SafetensorsFile.open(small)) {
            assertEquals(30, f.names().size());
            assertTrue(f.names().stream().allMatch(n -> n.contains("attn2") && n.contains("_blocks")), f.names().toString());
        }
    }

    /**
     * SD 2.x: a single file keeps its OpenCLIP text tower untouched (the unused last resblock, text_projection and
     * logit_scale included), and a folder's single-file output holds the tower in that layout, as SD 2.x loaders
     * read it (never cond_stage_model.transformer.*).
     */
    @Test
    void sd2SingleFileOutputKeepsTheOpenClipLayout(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sd2-a-single-file.safetensors");
        Path out = tmp.resolve("erased.safetensors");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", source.toString(), "--config",
                Fixtures.path("tiny-sd2-a").toString(), "--tokenizer", Fixtures.path("tiny-sd2-a/tokenizer").toString(),
                "--concept", "Van Gogh", "--output", out.toString()}, QUICK)));
        Path fromFolder = tmp.resolve("from-folder.safetensors");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", Fixtures.path("tiny-sd2-a").toString(),
                "--concept", "Van Gogh", "--format", "single-file", "--output", fromFolder.toString()}, QUICK)));
        try (SafetensorsFile a = SafetensorsFile.open(source); SafetensorsFile b = SafetensorsFile.open(out);
             SafetensorsFile c = SafetensorsFile.open(fromFolder)) {
            assertEquals(a.names(), b.names());
            for (String name : a.names()) {
                boolean same = a.raw(name).mismatch(b.raw(name)) == -1;
                assertEquals(!name.contains("attn2") || !name.startsWith("model.diffusion_model."), same, name);
            }
            assertTrue(c.names().stream().noneMatch(n -> n.startsWith("cond_stage_model.transformer.")), c.names().toString());
            for (String name : c.names()) {
                if (name.startsWith("cond_stage_model.")) assertEquals(-1, a.raw(name).mismatch(c.raw(name)), name);
            }
            assertTrue(c.names().contains("cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"));
        }
    }

    @Test
    void badInputIsOneLineAndExitTwo(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        Path existing = tmp.resolve("exists");
        existing.toFile().mkdirs();
        String[][] bad = {
                {"train", "--model", model, "--concept", "x", "--method", "attn"},
                {"train", "--model", model, "--concept", " "},
                {"train", "--model", model},
                {"train", "--model", tmp.resolve("missing").toString(), "--concept", "x"},
                {"train", "--model", tmp.toString(), "--concept", "x"},
                {"train", "--model", model, "--concept", "x", "--resolution", "18"},
                {"train", "--model", model, "--concept", "x", "--output", existing.toString()},
                {"train", "--model", model, "--concept", "x", "--schedule", "fast"},
                {"train", "--model", model, "--concept", "x", "--sampler", "sideways"},
                {"train", "--model", model, "--concept", "x", "--fast", "--schedule", "paper"},
                {"train", "--model", model, "--concept", "x", "--fast", "--sampler", "trainable"},
                {"train", "--model", model, "--concept", "x", "--reuse", "2"},
                {"train", "--model", model, "--concept", "x", "--fast", "--reuse", "3"},
                {"train", "--model", model, "--concept", "x", "--sampler", "frozen", "--schedule", "aligned", "--reuse", "1"},
                {"train", "--model", model, "--concept", "x", "--replay-dir", tmp.resolve("none").toString()},
        };
        String[] elsewhere = {"--output", tmp.resolve("out").toString()};
        for (String[] args : bad) {
            String[] full = args[args.length - 2].equals("--output") ? args : concat(args, elsewhere);
            assertEquals(2, Main.run(concat(full, QUICK)), String.join(" ", args));
        }
        assertFalse(Files.exists(tmp.resolve("out")), "no output after refused input");
    }

    @Test
    void fastRunLogsItsTrajectoriesAndWhatEachIterationCost(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out.safetensors");
        assertEquals(0, Main.run("train", "--model", Fixtures.path("tiny-sd-a").toString(), "--concept", "x", "--fast",
                "--reuse", "2", "--iterations", "3", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu", "--format", "trained-only",
                "--output", out.toString(), "--trace-dir", tmp.resolve("trace").toString()));
        var lines = Files.readAllLines(tmp.resolve("out.log.jsonl"));
        assertEquals(3, lines.size());
        // two points a trajectory: iterations 1 and 3 start one (sampling as deep as the point they train on)
        var first = esdnative.io.Json.mapper().readTree(lines.get(0));
        var second = esdnative.io.Json.mapper().readTree(lines.get(1));
        assertEquals(1, first.get("trajectory").asInt());
        assertEquals(1, second.get("trajectory").asInt());
        assertEquals(2, esdnative.io.Json.mapper().readTree(lines.get(2)).get("trajectory").asInt());
        assertEquals(1, second.get("unet_backwards").asInt());
        assertEquals(2 * (Math.max(first.get("t_enc").asInt(), second.get("t_enc").asInt()) + 1) + 2,
                first.get("unet_forwards").asInt() + second.get("unet_forwards").asInt(), lines.toString());
        assertTrue(Files.exists(tmp.resolve("trace/iter-000003-start.npy")));
        // its trace, replayed without --fast, is refused before training; the user sees the flag in front of the core's words
        Path replayed = tmp.resolve("replayed.safetensors");
        String[] err = stderrOf(2, "train", "--model", Fixtures.path("tiny-sd-a").toString(), "--concept", "x",
                "--iterations", "3", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu", "--format", "trained-only",
                "--output", replayed.toString(), "--replay-dir", tmp.resolve("trace").toString());
        assertEquals("esd-native: --replay-dir: trace file iter-000001.json: the trace is of a run that reused trajectories; "
                + "replay it with trajectory reuse; pass --fast (and the --reuse it had)", err[err.length - 1], String.join("\n", err));
        assertFalse(Files.exists(replayed));
    }

    /** --dry-run's counts are the fixture file's own: ESD-x trains the tensors the paper code's rule names ("attn2"). */
    @Test
    void dryRunCountsWithoutTraining() {
        Cli r = Cli.run("train", "--model", Fixtures.path("tiny-sd-a").toString(), "--method", "esd-x", "--dry-run");
        assertEquals(0, r.exit(), r.err());
        long total = 0, crossAttention = 0;
        try (SafetensorsFile unet = SafetensorsFile.open(Fixtures.path("tiny-sd-a/unet/diffusion_pytorch_model.safetensors"))) {
            for (String name : unet.names()) {
                long size = Arrays.stream(unet.shape(name)).reduce(1, Math::multiplyExact);
                total += size;
                if (name.contains("attn2")) crossAttention += size;
            }
        }
        assertTrue(crossAttention > 0 && crossAttention < total);
        assertEquals(String.format(Locale.ROOT, "xattn trains %,d of %,d UNet parameters%n", crossAttention, total),
                r.out());
    }

    /** A method that selects nothing on this UNet: --dry-run gives training's answer (exit 2, the same line). */
    @Test
    void dryRunOfAMethodThatSelectsNothingFailsAsTrainingDoes(@TempDir Path tmp) {
        String[] args = {"train", "--model", Fixtures.path("tiny-sd-a").toString(), "--method", "selflayer",
                "--concept", "a cat", "--output", tmp.resolve("out").toString()};
        String[] training = stderrOf(2, concat(args, QUICK));
        String[] dryRun = stderrOf(2, concat(args, new String[] {"--dry-run"}));
        assertEquals("esd-native: --method selflayer: selects no parameter of this UNet (its rules name blocks of SD's 4-level UNet)",
                dryRun[dryRun.length - 1]);
        assertEquals(training[training.length - 1], dryRun[dryRun.length - 1]);
    }

    /** Runs the command, checks its exit code and returns what it printed to stderr, line by line. */
    private static String[] stderrOf(int exitCode, String... args) {
        java.io.PrintStream saved = System.err;
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        try {
            System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(exitCode, Main.run(args), String.join(" ", args));
        } finally {
            System.setErr(saved);
        }
        return err.toString(java.nio.charset.StandardCharsets.UTF_8).split("\\R");
    }

    private static long mismatch(Path a, Path b) {
        try (SafetensorsFile x = SafetensorsFile.open(a); SafetensorsFile y = SafetensorsFile.open(b)) {
            for (String n : x.names()) {
                MemorySegment s = x.raw(n);
                if (s.mismatch(y.raw(n)) != -1) return 0;
            }
            return -1;
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = new String[a.length + b.length];
        System.arraycopy(a, 0, r, 0, a.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
