package esdnative.sweep;

import esdnative.sweep.TaskStatus.State;
import esdnative.testing.Cli;
import esdnative.toy.ToyAssets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A task stopped mid-run — by a signal, as scancel or a Slurm time limit stops it, or killed outright — and run
 * again by {@code sweep run} resumes from its checkpoint and ends with an output bit-identical to a task that ran
 * uninterrupted. On the built-in toy model, CPU backend, without Slurm.
 */
class SweepResumeTest {
    private static final int ITERATIONS = 8;
    private static ToyAssets toy;

    @TempDir
    Path dir;

    @BeforeAll
    static void extractToyModel() {
        toy = ToyAssets.extract();
    }

    @AfterAll
    static void removeToyModel() {
        toy.close();
    }

    /** Plans a one-task sweep (erase "circle") into {@code name}; every sweep of this test has the same task. */
    private Path plan(String name) throws IOException {
        Path concepts = dir.resolve("concepts.txt");
        Files.writeString(concepts, "circle\n");
        Path out = dir.resolve(name);
        Cli r = Cli.run("sweep", "plan", "--concepts", concepts.toString(), "--out", out.toString(),
                "--model", toy.model().toString(), "--backend", "cpu", "--iterations", Integer.toString(ITERATIONS),
                "--ddim-steps", "5", "--lr", "1e-3", "--save-every", "2");
        assertEquals(0, r.exit(), r.err());
        return out;
    }

    @Test
    void stoppedBySignalResumesBitIdentical() throws Exception {
        Path reference = plan("reference");
        Cli ran = Cli.run("sweep", "run", reference.toString(), "--local");
        assertEquals(0, ran.exit(), ran.err());
        TaskStatus uninterrupted = TaskStatus.read(TaskRunner.taskDir(reference, 0));
        assertEquals(State.DONE, uninterrupted.state());
        assertEquals(ITERATIONS, uninterrupted.iteration());

        // SIGTERM to the runner and the train process, as scancel sends: train writes a checkpoint and stops
        Path stopped = plan("stopped");
        stopMidRun(stopped, false);
        TaskStatus interrupted = TaskStatus.read(TaskRunner.taskDir(stopped, 0));
        assertEquals(State.INTERRUPTED, interrupted.state(), interrupted.toString());
        assertEquals(143, interrupted.exitCode(), "a JVM stopped by SIGTERM exits 143 (after train's hook saved)");
        assertTrue(interrupted.iteration() < ITERATIONS, interrupted.toString());
        assertTrue(Files.readString(TaskRunner.taskDir(stopped, 0).resolve(TaskRunner.PROCESS_LOG))
                .contains("interrupted after iteration " + interrupted.iteration() + "; resume with"), "train saved on the signal");
        assertResumesToTheSameOutput(stopped, reference, uninterrupted);

        // SIGKILL: no checkpoint at the kill; the run resumes from the last --save-every one
        Path killed = plan("killed");
        stopMidRun(killed, true);
        TaskStatus stale = TaskStatus.read(TaskRunner.taskDir(killed, 0));
        assertEquals(State.RUNNING, stale.state(), "nobody recorded the end");
        SweepTable.Row row = new SweepTable(killed, SweepPlan.read(killed)).rows().getFirst();
        assertEquals(State.INTERRUPTED, row.state(), "status sees that its runner is gone");
        assertResumesToTheSameOutput(killed, reference, uninterrupted);
    }

    /** Starts `sweep run DIR --task 0` in its own JVM and stops it (and its train process) after iteration 3. */
    private static void stopMidRun(Path sweep, boolean kill) throws Exception {
        SweepPlan.Task task = SweepPlan.read(sweep).task(0);
        List<String> command = new ArrayList<>(Launcher.current());
        command.addAll(List.of("sweep", "run", sweep.toString(), "--task", "0"));
        Process runner = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(sweep.resolve("runner.log").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
            while (loggedIterations(task) < 3 || !Files.exists(task.checkpoint())) {
                assertTrue(runner.isAlive(), "the runner ended early: " + Files.readString(sweep.resolve("runner.log")));
                assertTrue(System.nanoTime() < deadline, "no third iteration within 240 s");
                Thread.sleep(10);
            }
            List<ProcessHandle> processes = new ArrayList<>(runner.descendants().toList());
            processes.add(runner.toHandle());
            assertEquals(2, processes.size(), "the runner and its train process");
            for (ProcessHandle p : processes) {
                if (kill) p.destroyForcibly();
                else p.destroy();
            }
            assertTrue(runner.waitFor(120, TimeUnit.SECONDS), "the runner did not stop");
            for (ProcessHandle p : processes) p.onExit().get(120, TimeUnit.SECONDS);
        } finally {
            runner.destroyForcibly();
        }
        assertFalse(Files.exists(task.outputPath()), "stopped before the end");
        assertTrue(Files.exists(task.checkpoint()));
    }

    private static void assertResumesToTheSameOutput(Path sweep, Path reference, TaskStatus uninterrupted) throws IOException {
        Cli resumed = Cli.run("sweep", "run", sweep.toString(), "--task", "0");
        assertEquals(0, resumed.exit(), resumed.err());
        assertTrue(resumed.err().contains("resuming from"), resumed.err());
        TaskStatus done = TaskStatus.read(TaskRunner.taskDir(sweep, 0));
        assertEquals(State.DONE, done.state());
        assertEquals(2, done.attempts());
        assertTrue(done.resumed());
        assertEquals(ITERATIONS, done.iteration());
        assertEquals(uninterrupted.loss(), done.loss(), "the last iteration's loss, bit for bit");
        assertSameFiles(Path.of(SweepPlan.read(reference).task(0).output()), Path.of(SweepPlan.read(sweep).task(0).output()));

        // run again: done, skipped
        Cli again = Cli.run("sweep", "run", sweep.toString(), "--task", "0");
        assertEquals(0, again.exit());
        assertTrue(again.err().contains("done already"), again.err());
        assertEquals(done, TaskStatus.read(TaskRunner.taskDir(sweep, 0)));
    }

    private static int loggedIterations(SweepPlan.Task task) throws IOException {
        if (!Files.exists(task.iterationLog())) return 0;
        return (int) Files.readAllLines(task.iterationLog()).stream().filter(l -> l.endsWith("}")).count();
    }

    /** The same files with the same bytes under both folders. */
    private static void assertSameFiles(Path expected, Path actual) throws IOException {
        List<Path> files = relativeFiles(expected);
        assertFalse(files.isEmpty());
        assertEquals(files, relativeFiles(actual));
        for (Path f : files) {
            assertEquals(-1, Files.mismatch(expected.resolve(f), actual.resolve(f)), f + " differs");
        }
    }

    private static List<Path> relativeFiles(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).map(root::relativize).sorted().toList();
        }
    }
}
