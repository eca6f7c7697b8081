package esdnative.cli;

import esdnative.backend.cpu.CpuBackend;
import esdnative.checkpoint.Layout;
import esdnative.esd.Checkpoint;
import esdnative.esd.EsdTrainer;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** `train` under bad settings, NaN, a changing input, concurrent runs and resumes (issue 12's audit, 21.5/21.6). */
class TrainReliabilityTest {
    /** the options every run here takes, unless a test gives its own value (picocli refuses an option twice) */
    private static final Map<String, String> QUICK = Map.of("--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu");

    @Test
    void nonFiniteOrNegativeSettingsAreRefusedBeforeAnyWork(@TempDir Path tmp) {
        String[][] bad = {{"--lr", "Infinity"}, {"--lr", "NaN"}, {"--negative-guidance", "NaN"},
                {"--start-guidance", "Infinity"}, {"--save-every", "-3"}, {"--ddim-steps", "1000"},
                {"--resolution", "100000"}};
        Path out = tmp.resolve("out");
        for (String[] setting : bad) {
            String[] args = train(Fixtures.path("tiny-sd-a"), out, "1", setting);
            assertEquals(2, Main.run(args), String.join(" ", setting));
        }
        assertEquals(List.of(), list(tmp), "no output, no log");
    }

    @Test
    void aLossThatIsNotFiniteStopsTheRunWithoutAnOutput(@TempDir Path tmp) throws IOException {
        Path nanModel = copyOfTinyModel(tmp.resolve("nan-model"));
        Path unet = nanModel.resolve("unet/diffusion_pytorch_model.safetensors");
        rewrite(unet, "conv_in.bias", Float.NaN);
        Path out = tmp.resolve("out");
        assertEquals(2, Main.run(train(nanModel, out, "2")));
        assertFalse(Files.exists(out));
        String log = Files.readString(tmp.resolve("out.log.jsonl"));
        assertTrue(log.contains("\"loss\":null"), "JSON has no NaN: " + log);
        assertFalse(log.contains("NaN"), log);

        // a learning rate that makes the weights overflow: iteration 1 is finite, iteration 2 is not
        Path out2 = tmp.resolve("out2");
        assertEquals(2, Main.run(train(Fixtures.path("tiny-sd-a"), out2, "3", "--lr", "1e30")));
        assertFalse(Files.exists(out2));
        assertFalse(Files.exists(tmp.resolve("out2.checkpoint.safetensors")), "no non-finite checkpoint");
    }

    @Test
    void theFinishedTrainingSurvivesAnInputChangedDuringTheRun(@TempDir Path tmp) throws Exception {
        Path model = copyOfTinyModel(tmp.resolve("model"));
        Path out = tmp.resolve("out");
        Path log = tmp.resolve("out.log.jsonl");
        Path checkpoint = tmp.resolve("out.checkpoint.safetensors");
        Files.writeString(log, "{\"iteration\":1,\"from\":\"an earlier run\"}\n");
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            // once iteration 1 is logged, the input's text encoder is replaced by another file of the same size
            Future<?> replace = pool.submit((Callable<Void>) () -> {
                while (Files.size(log) < 80 || !Files.readString(log).contains("\"t_enc\"")) Thread.sleep(5);
                Path text = model.resolve("text_encoder/model.safetensors");
                Files.write(text, Files.readAllBytes(text));
                Files.setLastModifiedTime(text, FileTime.fromMillis(Files.getLastModifiedTime(text).toMillis() + 5000));
                return null;
            });
            assertEquals(2, Main.run(train(model, out, "6")));
            replace.get();
        } finally {
            pool.shutdownNow();
        }
        assertFalse(Files.exists(out), "no output mixing two inputs");
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint)) {
            assertEquals("6", f.metadata().get("iteration"), "the finished training is kept");
        }
        // resuming from it writes the output without training again, then removes the checkpoint
        assertEquals(0, Main.run(train(model, out, "6", "--resume", checkpoint.toString())));
        assertTrue(Files.isDirectory(out));
        assertFalse(Files.exists(checkpoint));
        List<String> lines = Files.readAllLines(log);
        assertEquals(6, lines.size(), "one line per iteration, the earlier run's line gone: " + lines);
        for (int i = 0; i < 6; i++) assertTrue(lines.get(i).startsWith("{\"iteration\":" + (i + 1) + ","), lines.get(i));
    }

    @Test
    void twoRunsOntoOneOutputNeverBothSucceed(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("shared.safetensors");
        String[] args = train(Fixtures.path("tiny-sd-a"), out, "2", "--format", "trained-only");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            Future<Integer> a = pool.submit(() -> Main.run(args)), b = pool.submit(() -> Main.run(args));
            int[] exits = {a.get(), b.get()};
            Arrays.sort(exits);
            assertArrayEquals(new int[] {0, 2}, exits);
        } finally {
            pool.shutdownNow();
        }
        assertEquals(List.of(tmp.resolve("shared.log.jsonl"), out), list(tmp), "no partial or lock file left");
    }

    @Test
    void resumeRefusesOtherSettingsAndACheckpointPastTheEnd(@TempDir Path tmp) {
        Path model = Fixtures.path("tiny-sd-a");
        Path checkpoint = tmp.resolve("run.checkpoint.safetensors");
        try (CpuBackend be = new CpuBackend()) {
            StableDiffusion sd = ModelLoader.load(be, model, null, null);
            EsdTrainer trainer = new EsdTrainer(be, sd, EsdTrainer.Settings.paper(List.of("a photo of a cat")).withIterations(3)
                    .withLr(1e-3f).withDdimSteps(2).withResolution(sd.defaultResolution()));
            trainer.step(trainer.draw());
            trainer.step(trainer.draw());
            Checkpoint.save(checkpoint, trainer);
        }
        Path out = tmp.resolve("out");
        String[] resume = {"--resume", checkpoint.toString()};
        for (String[] other : new String[][] {{"--lr", "2e-3"}, {"--seed", "1"}, {"--ddim-steps", "3"},
                {"--schedule", "aligned"}, {"--start-guidance", "2"}}) {
            assertEquals(2, Main.run(train(model, out, "3", concat(resume, other))), String.join(" ", other));
        }
        // the refusals that a flag lifts say which
        Cli beyond = Cli.run(train(model, out, "1", resume));
        assertEquals(2, beyond.exit(), "--iterations below the checkpoint's");
        assertEquals("esd-native: --resume: checkpoint " + checkpoint + " has completed 2 iterations, more than this run's 1; "
                + "plan 2 iterations or more; pass that as --iterations", lastLine(beyond));
        Cli fast = Cli.run(train(model, out, "3", concat(resume, new String[] {"--fast"})));
        assertEquals(2, fast.exit());
        assertEquals("esd-native: --resume: checkpoint " + checkpoint + " was saved by a run without trajectory reuse; "
                + "resume it without trajectory reuse; drop --fast/--reuse", lastLine(fast));
        assertFalse(Files.exists(out));
        assertEquals(0, Main.run(train(model, out, "3", resume)));
        assertTrue(Files.isDirectory(out));
    }

    @Test
    void outputNamesAreCheckedAndMadeSafeBeforeTraining(@TempDir Path tmp) {
        Path tooLong = tmp.resolve("x".repeat(240));
        assertEquals(2, Main.run(train(Fixtures.path("tiny-sd-a"), tooLong, "1")));
        assertEquals(List.of(), list(tmp), "refused before the first iteration: no log");

        EsdTrainer.Settings slash = settings("AC/DC");
        assertFalse(TrainCommand.defaultName(slash, Layout.SINGLE_FILE).contains("/"));
        String longName = TrainCommand.defaultName(settings("painting ".repeat(1200)), Layout.SINGLE_FILE);
        assertTrue(longName.getBytes(StandardCharsets.UTF_8).length < 200, longName.length() + " characters");
    }

    @Test
    void aConceptLongerThanTheTextEncoderSeesIsWarnedAbout(@TempDir Path tmp) {
        PrintStream saved = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            String[] args = train(Fixtures.path("tiny-sd-a"), tmp.resolve("o"), "1");
            args[4] = "painting ".repeat(100);   // the --concept value
            assertEquals(0, Main.run(args));
        } finally {
            System.setErr(saved);
        }
        assertTrue(captured.toString(StandardCharsets.UTF_8).contains("warning: the concept"), captured.toString());
    }

    @Test
    void withoutAModelTheToyDemoRefusesWhatItDoesNotTake(@TempDir Path tmp) {
        Path out = tmp.resolve("toy");
        assertEquals(2, Main.run("train", "--concept", "circle", "--format", "single-file", "--output", out.toString()));
        assertEquals(2, Main.run("train", "--concept", "dog", "--output", out.toString()));
        assertFalse(Files.exists(out), "no empty folder for a concept the toy does not know");
    }

    @Test
    void folderOutputsCopyTheInputsFilesWithNewFilePermissions(@TempDir Path tmp) throws IOException {
        // a Hugging Face cache snapshot: every file a symbolic link into blobs/
        Path source = Fixtures.path("tiny-sd-a"), blobs = Files.createDirectories(tmp.resolve("blobs"));
        Path snapshot = tmp.resolve("snapshot");
        try (Stream<Path> all = Files.walk(source)) {
            for (Path p : all.filter(Files::isRegularFile).toList()) {
                Path blob = blobs.resolve(Integer.toHexString(p.toString().hashCode()));
                Files.copy(p, blob);
                Path link = snapshot.resolve(source.relativize(p).toString());
                Files.createDirectories(link.getParent());
                Files.createSymbolicLink(link, blob);
            }
        }
        Path out = tmp.resolve("out");
        assertEquals(0, Main.run(train(snapshot, out, "1")));
        String fresh = PosixFilePermissions.toString(Files.getPosixFilePermissions(Files.createFile(tmp.resolve("fresh"))));
        try (Stream<Path> all = Files.walk(out)) {
            for (Path p : all.filter(p -> !Files.isDirectory(p)).toList()) {
                assertFalse(Files.isSymbolicLink(p), p + " is a link");
                assertEquals(1, ((Number) Files.getAttribute(p, "unix:nlink")).intValue(), p + " is a hard link");
                assertEquals(fresh, PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
            }
        }
        Path config = out.resolve("scheduler/scheduler_config.json");
        String original = Files.readString(snapshot.resolve("scheduler/scheduler_config.json"));
        assertEquals(original, Files.readString(config));
        Files.writeString(config, "{}");
        assertEquals(original, Files.readString(snapshot.resolve("scheduler/scheduler_config.json")), "the input is untouched");
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    /** train's arguments: QUICK, where {@code options} (name, value pairs; a flag alone when it takes none) win. */
    private static String lastLine(Cli r) {
        return r.err().strip().lines().reduce((a, b) -> b).orElse("");
    }

    private static String[] train(Path model, Path out, String iterations, String... options) {
        List<String> args = new ArrayList<>(List.of("train", "--model", model.toString(), "--concept", "a photo of a cat",
                "--output", out.toString(), "--iterations", iterations));
        args.addAll(List.of(options));
        QUICK.forEach((name, value) -> {
            if (!args.contains(name)) args.addAll(List.of(name, value));
        });
        return args.toArray(String[]::new);
    }

    private static EsdTrainer.Settings settings(String concept) {
        return EsdTrainer.Settings.paper(List.of(concept));
    }

    static Path copyOfTinyModel(Path to) throws IOException {
        Path source = Fixtures.path("tiny-sd-a");
        try (Stream<Path> all = Files.walk(source)) {
            for (Path p : all.toList()) {
                Path target = to.resolve(source.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else Files.copy(p, target);
            }
        }
        return to;
    }

    /** Rewrites a safetensors file with every value of one tensor set to {@code value}. */
    static void rewrite(Path file, String tensor, float value) {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String name : f.names()) {
                float[] values = f.readFloats(name);
                if (name.equals(tensor)) Arrays.fill(values, value);
                entries.put(name, Entry.floats(DType.F32, f.shape(name), values));
            }
        }
        SafetensorsWriter.write(file, entries, Map.of("format", "pt"));
    }

    private static List<Path> list(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
