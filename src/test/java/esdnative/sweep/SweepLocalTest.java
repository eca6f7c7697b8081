package esdnative.sweep;

import esdnative.sweep.TaskStatus.State;
import esdnative.testing.Cli;
import esdnative.toy.ToyAssets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** sweep run --local --parallel 2 on the toy model: one task succeeds, one fails with its reason; status and collect. */
class SweepLocalTest {
    @TempDir
    Path dir;

    @Test
    void runsEveryTaskAndRecordsFailures() throws Exception {
        try (ToyAssets toy = ToyAssets.extract()) {
            Path sweep = dir.resolve("sweep");
            // 17 px is no multiple of the toy UNet's downsampling: train refuses it before training
            Cli planned = Cli.run("sweep", "plan", "--preset", "allartist", "--out", sweep.toString(), "--grid", "resolution=16,17",
                    "--model", toy.model().toString(), "--backend", "cpu", "--iterations", "2", "--ddim-steps", "3");
            assertEquals(0, planned.exit(), planned.err());
            // keep two tasks of the twelve: this test is about running, not planning
            SweepPlan full = SweepPlan.read(sweep);
            new SweepPlan(full.version(), full.command(), full.workdir(), full.launcher(), full.grid(),
                    full.tasks().subList(0, 2)).write(sweep);

            Cli ran = Cli.run("sweep", "run", sweep.toString(), "--local", "--parallel", "2");
            assertEquals(1, ran.exit(), "a task failed: " + ran.err());
            assertTrue(ran.err().contains("sweep: 1 of 2 tasks done"), ran.err());
            TaskStatus ok = TaskStatus.read(TaskRunner.taskDir(sweep, 0));
            TaskStatus bad = TaskStatus.read(TaskRunner.taskDir(sweep, 1));
            assertEquals(State.DONE, ok.state(), ok.toString());
            assertEquals(2, ok.iteration());
            assertTrue(Files.isDirectory(Path.of(ok.output())));
            assertEquals(State.FAILED, bad.state(), bad.toString());
            assertEquals(2, bad.exitCode(), "train's exit status for bad input");
            assertTrue(bad.error().startsWith("--resolution: 17 px is not a positive multiple of"), bad.error());
            assertFalse(Files.exists(Path.of(bad.output())));

            String status = Cli.run("sweep", "status", sweep.toString()).out();
            assertTrue(status.contains("2 tasks: 1 done, 1 failed"), status);
            assertTrue(status.contains(bad.error()), status);

            // again: the done task is skipped, the failed one is tried again (and fails again)
            Cli again = Cli.run("sweep", "run", sweep.toString(), "--local");
            assertEquals(1, again.exit());
            assertTrue(again.err().contains("task 0 (000-kelly-mckernan-resolution_16): done already"), again.err());
            assertEquals(ok, TaskStatus.read(TaskRunner.taskDir(sweep, 0)));
            assertEquals(2, TaskStatus.read(TaskRunner.taskDir(sweep, 1)).attempts());

            assertEquals(0, Cli.run("sweep", "collect", sweep.toString()).exit());
            List<String> csv = Files.readAllLines(sweep.resolve("results.csv"));
            assertEquals(List.of("task,name,concept,resolution,state,iteration,final_loss,seconds,output",
                    "0,000-kelly-mckernan-resolution_16,Kelly Mckernan,16,done,2," + ok.loss() + ","
                            + String.format(java.util.Locale.ROOT, "%.1f", ok.seconds()) + "," + ok.output()),
                    csv.subList(0, 2));
            assertTrue(csv.get(2).startsWith("1,001-kelly-mckernan-resolution_17,Kelly Mckernan,17,failed,,,"), csv.get(2));
        }
    }
}
