package esdnative.sweep;

import esdnative.util.UserError;
import esdnative.sweep.TaskStatus.State;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Runs a sweep's tasks, each as its own esd-native process (the same java and jar), with its output in
 * DIR/tasks/I/esd-native.log and its state in DIR/tasks/I/status.json.
 *
 * <p>Idempotent: a task whose output exists is done and is skipped (train writes outputs atomically, so an output
 * that exists is complete). A task stopped by a signal (scancel, a Slurm time limit, Ctrl-C) has had train write a
 * checkpoint; one killed outright has the last {@code --save-every} checkpoint. Either way the next run passes train
 * {@code --resume CHECKPOINT}, and a resumed CPU run ends bit-identical to an uninterrupted one. A lock file keeps
 * two runs off the same task.
 */
final class TaskRunner {
    static final String PROCESS_LOG = "esd-native.log";
    private static final String LOCK = "lock";

    private final Path dir;
    private final SweepPlan plan;
    private final PrintStream log;

    TaskRunner(Path dir, SweepPlan plan, PrintStream log) {
        this.dir = dir.toAbsolutePath();
        this.plan = plan;
        this.log = log;
    }

    static Path taskDir(Path dir, int index) {
        return dir.resolve("tasks").resolve(Integer.toString(index));
    }

    /** Runs task {@code index} unless it is done; {@code env} is added to the task process's environment. */
    TaskStatus run(int index, Map<String, String> env) {
        SweepPlan.Task task = plan.task(index);
        Path taskDir = taskDir(dir, index);
        try {
            Files.createDirectories(taskDir);
        } catch (IOException e) {
            throw new UserError("cannot create " + taskDir + ": " + e.getMessage(), e);
        }
        Path lockPath = taskDir.resolve(LOCK);
        try (FileChannel lockFile = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = lockFile.tryLock()) {
            if (lock == null) throw new UserError("task " + index + " is being run by another process (" + lockPath + " is locked)");
            return runLocked(task, taskDir, TaskStatus.read(taskDir), env);
        } catch (IOException e) {
            throw new UserError("cannot lock " + lockPath + ": " + e.getMessage(), e);
        }
    }

    private TaskStatus runLocked(SweepPlan.Task task, Path taskDir, TaskStatus previous, Map<String, String> env) {
        String label = "task " + task.index() + " (" + task.name() + ")";
        int attempts = previous != null ? previous.attempts() : 0;
        if (Files.exists(task.outputPath())) {
            log.println(label + ": done already, " + task.output());
            if (previous != null && previous.state() == State.DONE) return previous;
            // the output was written but the run stopped before it recorded so
            TaskStatus done = ended(task, previous != null ? previous.started() : null, attempts,
                    previous != null && previous.resumed(), State.DONE, null, null);
            done.write(taskDir);
            return done;
        }

        boolean resume = plan.command().equals("train") && Files.exists(task.checkpoint());
        List<String> command = new ArrayList<>(Launcher.current());
        command.add(plan.command());
        command.addAll(task.args());
        if (resume) {
            command.add("--resume");
            command.add(task.checkpoint().toString());
        }
        Stop stop = new Stop();
        Thread hook = new Thread(stop::request, "esd-sweep-stop");
        Runtime.getRuntime().addShutdownHook(hook); // throws once the JVM is shutting down: then no task starts
        Instant started = Instant.now();
        attempts++;
        Path processLog = taskDir.resolve(PROCESS_LOG);
        try {
            new TaskStatus(task.index(), State.RUNNING, started.toString(), null, null, attempts, resume, null, null,
                    task.output(), host(), ProcessHandle.current().pid(), slurmJob(), null, null).write(taskDir);
            log.println(label + ": running (attempt " + attempts + (resume ? ", resuming from " + task.checkpoint() : "") + ")");
            appendLine(processLog, "== esd-native sweep: attempt " + attempts + " at " + started + ": " + String.join(" ", command));
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(processLog.toFile()));
            Path workdir = Path.of(plan.workdir());
            if (Files.isDirectory(workdir)) pb.directory(workdir.toFile());
            pb.environment().putAll(env);
            Process child = pb.start();
            stop.started(child);
            int exit = waitFor(child);

            TaskStatus end;
            if (exit == 0 && Files.exists(task.outputPath())) {
                end = ended(task, started.toString(), attempts, resume, State.DONE, exit, null);
            } else if (stop.requested() || exit == 130 || exit == 143 || exit == 137) {
                end = ended(task, started.toString(), attempts, resume, State.INTERRUPTED, exit, "stopped by a signal (exit "
                        + exit + "); `sweep run` again " + (Files.exists(task.checkpoint()) ? "resumes from " + task.checkpoint() : "restarts it"));
            } else {
                end = ended(task, started.toString(), attempts, resume, State.FAILED, exit,
                        exit == 0 ? "exited 0 but wrote no " + task.output() : lastError(processLog, exit));
            }
            end.write(taskDir);
            log.println(label + ": " + describe(end));
            return end;
        } catch (IOException e) {
            TaskStatus failed = ended(task, started.toString(), attempts, resume, State.FAILED, null,
                    "cannot start " + command.getFirst() + ": " + e.getMessage());
            failed.write(taskDir);
            throw new UserError(label + ": " + failed.error(), e);
        } finally {
            stop.recorded.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running and has just been released
            }
        }
    }

    /**
     * Runs every task that is not done, {@code parallel} at a time, each with 1/parallel of the CPU threads
     * (unless ESD_THREADS is set); returns the statuses in task order.
     */
    List<TaskStatus> runAll(int parallel) {
        if (parallel < 1) throw new UserError("--parallel must be at least 1, got " + parallel);
        Map<String, String> env = new HashMap<>();
        if (System.getenv("ESD_THREADS") == null) {
            env.put("ESD_THREADS", Integer.toString(Math.max(1, Runtime.getRuntime().availableProcessors() / parallel)));
        }
        List<TaskStatus> statuses = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(parallel)) {
            List<Future<TaskStatus>> running = new ArrayList<>();
            for (SweepPlan.Task t : plan.tasks()) running.add(pool.submit(() -> runOrRecord(t.index(), env)));
            for (Future<TaskStatus> f : running) statuses.add(f.get());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted");
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
        return statuses;
    }

    /** One task of runAll: a task that cannot run (locked, stopped) is reported and left as its status says. */
    private TaskStatus runOrRecord(int index, Map<String, String> env) {
        try {
            return run(index, env);
        } catch (UserError | IllegalStateException e) {
            log.println("task " + index + ": " + e.getMessage());
            TaskStatus s = TaskStatus.read(taskDir(dir, index));
            return s != null ? s : new TaskStatus(index, State.PENDING, null, null, null, 0, false, null, null,
                    plan.task(index).output(), null, null, null, null, e.getMessage());
        }
    }

    private TaskStatus ended(SweepPlan.Task task, String started, int attempts, boolean resumed, State state,
                             Integer exit, String error) {
        Instant finished = Instant.now();
        Double seconds = started != null ? Duration.between(Instant.parse(started), finished).toMillis() / 1000.0 : null;
        IterationLog last = IterationLog.last(task.iterationLog());
        return new TaskStatus(task.index(), state, started, finished.toString(), seconds, attempts, resumed,
                last != null ? last.iteration() : null, last != null ? last.loss() : null, task.output(), host(),
                ProcessHandle.current().pid(), slurmJob(), exit, error);
    }

    static String describe(TaskStatus s) {
        String loss = s.loss() != null ? String.format(Locale.ROOT, ", loss %.6f at iteration %d", s.loss(), s.iteration()) : "";
        String time = s.seconds() != null ? String.format(Locale.ROOT, " in %.1f s", s.seconds()) : "";
        return switch (s.state()) {
            case DONE -> "done" + time + loss + ", " + s.output();
            case FAILED -> "failed" + time + ": " + s.error();
            case INTERRUPTED -> "interrupted" + time + loss + ": " + s.error();
            default -> s.state().id();
        };
    }

    /** The task process's last "esd-native: ..." line (its one-line error), else its exit status. */
    private static String lastError(Path processLog, int exit) {
        try {
            List<String> lines = Files.readAllLines(processLog, StandardCharsets.UTF_8);
            for (int i = lines.size() - 1; i >= 0; i--) {
                if (lines.get(i).startsWith("esd-native: ")) return lines.get(i).substring("esd-native: ".length());
            }
        } catch (IOException ignored) {
            // the exit status is all there is to say then
        }
        return "exit status " + exit + "; see " + processLog;
    }

    private static int waitFor(Process child) {
        boolean interrupted = false;
        while (true) {
            try {
                int exit = child.waitFor();
                if (interrupted) Thread.currentThread().interrupt();
                return exit;
            } catch (InterruptedException e) {
                interrupted = true;
                child.destroy(); // the task stops as on a signal: checkpoint, then exit
            }
        }
    }

    private static void appendLine(Path file, String line) {
        try {
            Files.writeString(file, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** "JOB_TASK" of a Slurm array element, the job id of another Slurm job, else null. */
    private static String slurmJob() {
        String array = System.getenv("SLURM_ARRAY_JOB_ID"), element = System.getenv("SLURM_ARRAY_TASK_ID");
        if (array != null && element != null) return array + "_" + element;
        return System.getenv("SLURM_JOB_ID");
    }

    /**
     * This JVM is being stopped (SIGTERM from scancel or a time limit, Ctrl-C): pass the signal on to the task
     * process, so train writes its checkpoint, and hold the JVM until the task's status is recorded.
     */
    private static final class Stop {
        final CountDownLatch recorded = new CountDownLatch(1);
        private Process child;
        private boolean requested;

        synchronized void started(Process p) {
            child = p;
            if (requested) p.destroy();
        }

        synchronized boolean requested() { return requested; }

        void request() {
            synchronized (this) {
                requested = true;
                if (child != null) child.destroy();
            }
            try {
                recorded.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
