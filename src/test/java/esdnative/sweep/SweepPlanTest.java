package esdnative.sweep;

import esdnative.esd.ConceptPresets;
import esdnative.testing.Cli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** sweep plan without running anything: the tasks, their order and arguments, the batch script, and refusals. */
class SweepPlanTest {
    @TempDir
    Path dir;

    private Path model;
    private Path concepts;

    private Cli plan(Path out, String... extra) throws IOException {
        model = Files.createDirectories(dir.resolve("model"));
        concepts = dir.resolve("concepts.txt");
        Files.writeString(concepts, "# artists\nVan Gogh\n\nKelly Mckernan\n");
        List<String> args = new ArrayList<>(List.of("sweep", "plan", "--concepts", concepts.toString(), "--out", out.toString(),
                "--model", model.toString(), "--iterations", "7"));
        args.addAll(Arrays.asList(extra));
        return Cli.run(args.toArray(String[]::new));
    }

    @Test
    void conceptsTimesGridInOrderWithEveryArgumentNamed() throws IOException {
        Path out = dir.resolve("sweep");
        Cli r = plan(out, "--grid", "lr=1e-5,2e-5;negative-guidance=1,2");
        assertEquals(0, r.exit(), r.err());
        SweepPlan p = SweepPlan.read(out);
        assertEquals(8, p.tasks().size());
        assertEquals("train", p.command());
        assertEquals(List.of("lr", "negative-guidance"), List.copyOf(p.grid().keySet()));
        // concepts outermost, then the grid with its last axis fastest
        String[][] expected = {{"Van Gogh", "1e-5", "1"}, {"Van Gogh", "1e-5", "2"}, {"Van Gogh", "2e-5", "1"},
                {"Van Gogh", "2e-5", "2"}, {"Kelly Mckernan", "1e-5", "1"}, {"Kelly Mckernan", "1e-5", "2"},
                {"Kelly Mckernan", "2e-5", "1"}, {"Kelly Mckernan", "2e-5", "2"}};
        for (int i = 0; i < 8; i++) {
            SweepPlan.Task t = p.tasks().get(i);
            assertEquals(i, t.index());
            assertEquals(expected[i][0], t.concept());
            assertEquals(Map.of("lr", expected[i][1], "negative-guidance", expected[i][2]), t.values());
            Path output = out.toAbsolutePath().resolve("outputs").resolve(t.name());
            assertEquals(output.toString(), t.output(), "a diffusers folder in, a folder out");
            assertEquals(List.of("--model", model.toString(), "--iterations", "7", "--concept", expected[i][0],
                    "--lr", expected[i][1], "--negative-guidance", expected[i][2], "--seed", "0", "--output", output.toString()),
                    t.args());
        }
        assertEquals("005-kelly-mckernan-lr_1e-5-negative-guidance_2", p.tasks().get(5).name());
        assertTrue(Files.isDirectory(out.resolve("logs")), "Slurm opens the array's log files there before a task starts");
    }

    @Test
    void theSameRequestPlansTheSameTasks() throws IOException {
        assertEquals(0, plan(dir.resolve("a"), "--grid", "seed=3,4", "--lr", "2e-5").exit());
        assertEquals(0, plan(dir.resolve("b"), "--grid", "seed=3,4", "--lr", "2e-5").exit());
        List<SweepPlan.Task> a = SweepPlan.read(dir.resolve("a")).tasks(), b = SweepPlan.read(dir.resolve("b")).tasks();
        assertEquals(4, a.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).name(), b.get(i).name());
            assertEquals(a.get(i).args().subList(0, a.get(i).args().size() - 1), b.get(i).args().subList(0, b.get(i).args().size() - 1));
        }
        assertEquals("3", SweepPlanner.value(a.get(0).args(), "--seed"), "a grid seed is the task's seed");
        assertEquals(1, a.get(0).args().stream().filter("--seed"::equals).count());
    }

    @Test
    void singleFileOutputsWhenTheFormatSaysSo() throws IOException {
        Path out = dir.resolve("sweep");
        assertEquals(0, plan(out, "--format", "single-file").exit());
        SweepPlan.Task t = SweepPlan.read(out).tasks().getFirst();
        assertTrue(t.output().endsWith("000-van-gogh.safetensors"), t.output());
        assertEquals(t.output().replace(".safetensors", ".checkpoint.safetensors"), t.checkpoint().toString());
        assertEquals(t.output().replace(".safetensors", ".log.jsonl"), t.iterationLog().toString());
    }

    @Test
    void presetGivesOneTaskPerConcept() throws IOException {
        Path out = dir.resolve("sweep");
        model = Files.createDirectories(dir.resolve("model"));
        Cli r = Cli.run("sweep", "plan", "--preset", "allartist", "--out", out.toString(), "--model", model.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals(ConceptPresets.preset("allartist"), SweepPlan.read(out).tasks().stream().map(SweepPlan.Task::concept).toList());
    }

    @Test
    void batchScriptIsAJobArrayThatRunsEachTask() throws IOException, InterruptedException {
        Path out = dir.resolve("sweep");
        Cli r = plan(out, "--grid", "lr=1e-5,2e-5", "--backend", "cuda", "--partition", "gpu", "--time", "04:00:00",
                "--mem", "32G", "--cpus-per-task", "8", "--max-running", "3", "--sbatch", "--account=lab",
                "--sbatch", "#SBATCH --qos=low");
        assertEquals(0, r.exit(), r.err());
        Path abs = out.toAbsolutePath();
        List<String> lines = Files.readAllLines(abs.resolve("sweep.sbatch"));
        assertEquals("#!/bin/bash", lines.getFirst());
        for (String expected : List.of("#SBATCH --array=0-3%3", "#SBATCH --gres=gpu:1", "#SBATCH --partition=gpu",
                "#SBATCH --time=04:00:00", "#SBATCH --mem=32G", "#SBATCH --cpus-per-task=8", "#SBATCH --account=lab",
                "#SBATCH --qos=low", "#SBATCH --output=" + abs.resolve("logs") + "/%A_%a.out")) {
            assertTrue(lines.contains(expected), expected + " missing from\n" + String.join("\n", lines));
        }
        String exec = lines.getLast();
        List<String> launcher = SweepPlan.read(out).launcher();
        assertTrue(exec.startsWith("exec '" + launcher.getFirst() + "'"), exec);
        assertTrue(exec.endsWith(" sweep run '" + abs + "' --task \"$SLURM_ARRAY_TASK_ID\""), exec);
        Process syntax = new ProcessBuilder("bash", "-n", abs.resolve("sweep.sbatch").toString()).redirectErrorStream(true).start();
        assertTrue(syntax.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, syntax.exitValue(), new String(syntax.getInputStream().readAllBytes()));

        Path cpu = dir.resolve("cpu");
        assertEquals(0, plan(cpu, "--backend", "cpu").exit());
        String script = Files.readString(cpu.resolve("sweep.sbatch"));
        assertFalse(script.contains("--gres"), "no GPU asked for without --backend cuda");
        assertTrue(script.contains("#SBATCH --array=0-1\n"), script);
    }

    @Test
    void refusesWhatWouldFailInEveryTask() throws IOException {
        record Case(String expectedMessage, String[] args) {}
        List<Case> cases = List.of(
                new Case("esd-native train refuses task 0's arguments: Unknown options: '--learning-rate', '1e-5'", new String[] {"--learning-rate", "1e-5"}),
                new Case("'many' is not an int", new String[] {"--iterations", "many"}),
                new Case("--output: the sweep sets this for each task", new String[] {"--output", "x"}),
                new Case("--resume: the sweep sets this for each task", new String[] {"--resume=x"}),
                new Case("--grid: --lr is also given as a flag", new String[] {"--lr", "1e-5", "--grid", "lr=1e-5,2e-5"}),
                new Case("--grid: 'lr' is not NAME=V1,V2", new String[] {"--grid", "lr"}),
                new Case("--grid: lr repeats a value", new String[] {"--grid", "lr=1,1"}),
                new Case("--command: this esd-native has no 'nope' command", new String[] {"--command", "nope"}),
                new Case("--cpus-per-task must be at least 1", new String[] {"--cpus-per-task", "0"}));
        for (int i = 0; i < cases.size(); i++) {
            Path out = dir.resolve("refused" + i);
            Cli r = plan(out, cases.get(i).args());
            assertEquals(2, r.exit(), cases.get(i).expectedMessage() + ": " + r.err());
            assertTrue(r.err().contains(cases.get(i).expectedMessage()), r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertFalse(Files.exists(out.resolve("sweep.json")));
        }

        Files.writeString(dir.resolve("twice.txt"), "a\nb\na\n");
        Cli twice = Cli.run("sweep", "plan", "--concepts", dir.resolve("twice.txt").toString(), "--model", "m", "--out",
                dir.resolve("t").toString());
        assertEquals(2, twice.exit());
        assertTrue(twice.err().contains("line 3 repeats 'a'"), twice.err());

        Cli noModel = Cli.run("sweep", "plan", "--preset", "i2p", "--out", dir.resolve("n").toString());
        assertEquals(2, noModel.exit());
        assertTrue(noModel.err().contains("--model: a sweep needs the model"), noModel.err());

        Path out = dir.resolve("again");
        assertEquals(0, plan(out).exit());
        Cli again = plan(out);
        assertEquals(2, again.exit());
        assertTrue(again.err().contains("already holds a sweep"), again.err());
    }
}
