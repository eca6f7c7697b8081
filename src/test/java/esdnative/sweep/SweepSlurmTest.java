package esdnative.sweep;

import esdnative.io.SafetensorsFile;
import esdnative.sweep.TaskStatus.State;
import esdnative.testing.Cli;
import esdnative.toy.ToyAssets;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A 3-task sweep on the toy model, submitted with sbatch to a real Slurm (the one-node cluster .ci/slurm-up.sh starts
 * in CI): every array element must run its own task to the end, and {@code sweep collect} must list all three.
 * Without a Slurm that answers, the test fails in CI (CI=true) and is skipped elsewhere, with the reason printed.
 */
class SweepSlurmTest {
    private static final List<String> CONCEPTS = List.of("circle", "square", "triangle");
    private static final int ITERATIONS = 3;
    private static final long WAIT_SECONDS = 150;

    @TempDir
    Path dir;

    @Test
    void threeTaskSweepRunsAsAJobArray() throws Exception {
        requireSlurm();
        long start = System.nanoTime();
        try (ToyAssets toy = ToyAssets.extract()) {
            Path concepts = dir.resolve("concepts.txt");
            Files.writeString(concepts, String.join("\n", CONCEPTS) + "\n");
            Path sweep = dir.resolve("sweep");
            Cli planned = Cli.run("sweep", "plan", "--concepts", concepts.toString(), "--out", sweep.toString(),
                    "--job-name", "esd-sweep-test", "--cpus-per-task", "1", "--time", "00:05:00",
                    "--model", toy.model().toString(), "--backend", "cpu", "--iterations", Integer.toString(ITERATIONS),
                    "--ddim-steps", "4", "--lr", "1e-3", "--save-every", "2");
            assertEquals(0, planned.exit(), planned.err());

            Result submitted = command(30, "sbatch", "--parsable", sweep.resolve("sweep.sbatch").toString());
            assertEquals(0, submitted.exit(), "sbatch: " + submitted.output());
            String job = submitted.output().strip().split(";")[0];
            boolean finished = false;
            try {
                awaitTasks(sweep, job);
                finished = true;
            } finally {
                if (!finished) command(30, "scancel", job);
            }

            SweepPlan plan = SweepPlan.read(sweep);
            for (SweepPlan.Task t : plan.tasks()) {
                TaskStatus s = TaskStatus.read(TaskRunner.taskDir(sweep, t.index()));
                assertEquals(State.DONE, s.state(), t.name() + ": " + s + "\n" + diagnostics(sweep, job));
                assertEquals(job + "_" + t.index(), s.slurmJob(), "array element I ran task I");
                assertEquals(ITERATIONS, s.iteration());
                assertTrue(Double.isFinite(s.loss()));
                try (SafetensorsFile unet = SafetensorsFile.open(t.outputPath().resolve("unet/diffusion_pytorch_model.safetensors"))) {
                    assertEquals(t.concept(), unet.metadata().get("esd.concepts"), "the output erased the task's concept");
                }
            }

            Cli collected = Cli.run("sweep", "collect", sweep.toString());
            assertEquals(0, collected.exit(), collected.err());
            List<String> csv = Files.readAllLines(sweep.resolve("results.csv"));
            assertEquals("task,name,concept,state,iteration,final_loss,seconds,output", csv.getFirst());
            assertEquals(CONCEPTS.size() + 1, csv.size(), String.join("\n", csv));
            for (SweepPlan.Task t : plan.tasks()) {
                TaskStatus s = TaskStatus.read(TaskRunner.taskDir(sweep, t.index()));
                String[] cells = csv.get(t.index() + 1).split(",");
                assertEquals(List.of(Integer.toString(t.index()), t.name(), t.concept(), "done", Integer.toString(ITERATIONS),
                        Double.toString(s.loss())), List.of(cells).subList(0, 6));
                assertEquals(t.output(), cells[7]);
            }
            String markdown = Files.readString(sweep.resolve("results.md"));
            assertTrue(markdown.contains("3 tasks: 3 done"), markdown);
            assertEquals(CONCEPTS.size(), markdown.lines().filter(l -> l.matches("\\| \\d+ \\| .*")).count(), markdown);
        }
        System.out.printf(Locale.ROOT, "SweepSlurmTest: %d tasks through sbatch, done and collected in %.0f s%n",
                CONCEPTS.size(), (System.nanoTime() - start) / 1e9);
    }

    /** Waits until every task's status is final; fails with the logs when the job ends without or time runs out. */
    private static void awaitTasks(Path sweep, String job) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        int goneWithoutStatus = 0;
        while (System.nanoTime() < deadline) {
            long open = SweepPlan.read(sweep).tasks().stream().map(t -> TaskStatus.read(TaskRunner.taskDir(sweep, t.index())))
                    .filter(s -> s == null || s.state() == State.RUNNING || s.state() == State.PENDING).count();
            if (open == 0) return;
            Result queue = command(30, "squeue", "-h", "-j", job, "-o", "%i %T");
            if (queue.exit() == 0 && queue.output().isBlank() && ++goneWithoutStatus >= 3) {
                fail("job " + job + " left the queue with " + open + " task(s) unfinished\n" + diagnostics(sweep, job));
            }
            Thread.sleep(1000);
        }
        fail("the sweep did not finish within " + WAIT_SECONDS + " s\n" + diagnostics(sweep, job));
    }

    /** The queue, each task's status and the ends of the Slurm and task logs. */
    private static String diagnostics(Path sweep, String job) throws Exception {
        StringBuilder d = new StringBuilder("squeue: ").append(command(30, "squeue", "-j", job).output());
        d.append(Cli.run("sweep", "status", sweep.toString()).out());
        try (Stream<Path> logs = Stream.concat(Files.list(sweep.resolve("logs")),
                Files.walk(sweep.resolve("tasks")).filter(p -> p.endsWith(TaskRunner.PROCESS_LOG)))) {
            for (Path log : logs.sorted().toList()) {
                List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
                d.append("--- ").append(log).append('\n')
                        .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()))).append('\n');
            }
        }
        return d.toString();
    }

    /** Skips (or in CI fails) unless sinfo answers and shows a node that can take jobs. */
    private static void requireSlurm() throws InterruptedException {
        String problem;
        try {
            Result sinfo = command(30, "sinfo", "-h", "-N", "-o", "%T");
            if (sinfo.exit() != 0) problem = "sinfo failed: " + sinfo.output().strip();
            else if (sinfo.output().lines().noneMatch(s -> s.matches("(idle|mixed|allocated|completing)\\*?"))) {
                problem = "no node can take jobs (sinfo states: " + sinfo.output().strip().replace('\n', ' ') + ")";
            } else return;
        } catch (IOException e) {
            problem = "sinfo not found (" + e.getMessage() + ")";
        }
        String reason = "no running Slurm: " + problem + "; as root, .ci/slurm-up.sh starts a one-node cluster";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail("CI=true: " + reason);
        System.out.println("SKIPPED: " + reason);
        Assumptions.abort(reason);
    }

    private record Result(int exit, String output) {}

    /** Runs a command with a time limit, stdout and stderr together. */
    private static Result command(long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Path out = Files.createTempFile("esd-slurm-test", ".out");
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(-1, List.of(command) + " timed out after " + timeoutSeconds + " s");
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
