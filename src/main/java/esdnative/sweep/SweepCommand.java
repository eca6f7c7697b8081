package esdnative.sweep;

import esdnative.util.UserError;
import esdnative.esd.ConceptPresets;
import esdnative.options.Flags;
import esdnative.sweep.TaskStatus.State;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code esd-native sweep ...}: many erasures (concepts × a grid of settings) as a Slurm job array or locally. */
@Command(name = "sweep", description = "Erase many concepts (or one with many settings): one task per concept and grid point, "
        + "run as a Slurm job array or on this machine.",
        subcommands = {SweepCommand.Plan.class, SweepCommand.Run.class, SweepCommand.Status.class, SweepCommand.Collect.class})
public final class SweepCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(name = "plan", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Write DIR/sweep.json (every task's arguments and output) and DIR/sweep.sbatch (a Slurm job array).",
                    "Any other flag (--model, --iterations, --lr, --backend, ...) is passed to every task's command."})
    static final class Plan implements Callable<Integer> {
        @Option(names = "--concepts", paramLabel = "FILE", description = "One concept per line (# comments); one task per concept.")
        Path conceptsFile;
        @Option(names = "--preset", paramLabel = "NAME", description = "A concept list of the paper code (allartist, i2p); one task per concept.")
        String preset;
        @Option(names = "--grid", paramLabel = "SPEC", description = "Settings to cross with every concept, e.g. \"lr=1e-5,2e-5;negative-guidance=1,2\".")
        String grid;
        @Option(names = "--command", defaultValue = "train", description = "What each task runs: train or uce. Default: ${DEFAULT-VALUE}.")
        String command;
        @Option(names = "--out", required = true, paramLabel = "DIR", description = "The sweep's folder (new).")
        Path out;
        @Option(names = "--job-name", defaultValue = "esd-sweep", description = "Slurm job name. Default: ${DEFAULT-VALUE}.")
        String jobName;
        @Option(names = "--partition", description = "Slurm partition.")
        String partition;
        @Option(names = "--time", description = "Slurm time limit per task, e.g. 04:00:00 (at the limit train writes a checkpoint).")
        String time;
        @Option(names = "--mem", description = "Slurm memory per task, e.g. 32G.")
        String mem;
        @Option(names = "--cpus-per-task", description = "Slurm CPUs per task (also the CPU backend's threads).")
        Integer cpusPerTask;
        @Option(names = "--max-running", paramLabel = "N", description = "At most N tasks at once (the array's %%N).")
        Integer maxRunning;
        @Option(names = "--sbatch", paramLabel = "LINE", description = "An extra #SBATCH line, e.g. --sbatch=--account=lab (repeatable).")
        List<String> sbatch;
        @CommandLine.Unmatched
        List<String> passthrough = new ArrayList<>();

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if ((conceptsFile != null) == (preset != null)) throw new UserError("give exactly one of --concepts FILE or --preset NAME");
            List<String> concepts = conceptsFile != null ? SweepPlanner.readConcepts(conceptsFile) : Flags.about("--preset", () -> ConceptPresets.preset(preset));
            CommandLine target = spec.root().commandLine().getSubcommands().get(command);
            if (target == null) throw new UserError("--command: this esd-native has no '" + command + "' command");
            boolean gpu = "cuda".equals(SweepPlanner.value(passthrough, "--backend"));
            SweepPlan plan = SweepPlanner.plan(new SweepPlanner.Request(command, target, concepts, Grid.parse(grid),
                    List.copyOf(passthrough), out, new BatchScript.Options(jobName, partition, time, mem, cpusPerTask,
                    maxRunning, gpu, sbatch)));
            Path dir = out.toAbsolutePath().normalize();
            System.out.printf("planned %d tasks of `esd-native %s` in %s%n", plan.tasks().size(), command, dir);
            System.out.printf("run them on Slurm:   sbatch %s%n", dir.resolve(BatchScript.FILE));
            System.out.printf("or on this machine:  esd-native sweep run %s --local [--parallel P]%n", dir);
            return 0;
        }
    }

    @Command(name = "run", mixinStandardHelpOptions = true,
            description = {"Run one task (what each Slurm array element does) or, with --local, all of them here.",
                    "A done task is skipped; an interrupted one resumes from its checkpoint."})
    static final class Run implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR", description = "The sweep's folder.")
        Path dir;
        @Option(names = "--task", paramLabel = "I", description = "The task to run (0-based: $SLURM_ARRAY_TASK_ID).")
        Integer task;
        @Option(names = "--local", description = "Run every task that is not done on this machine.")
        boolean local;
        @Option(names = "--parallel", defaultValue = "1", paramLabel = "P", description = "With --local: P tasks at once. Default: ${DEFAULT-VALUE}.")
        int parallel;

        @Override
        public Integer call() {
            if ((task != null) == local) throw new UserError("give exactly one of --task I or --local");
            if (task != null && parallel != 1) throw new UserError("--parallel goes with --local; one --task runs alone");
            SweepPlan plan = SweepPlan.read(dir);
            TaskRunner runner = new TaskRunner(dir, plan, System.err);
            if (task != null) {
                TaskStatus s = runner.run(task, Map.of());
                return switch (s.state()) {
                    case DONE -> 0;
                    case INTERRUPTED -> 130;
                    default -> 1;
                };
            }
            List<TaskStatus> statuses = runner.runAll(parallel);
            long done = statuses.stream().filter(s -> s.state() == State.DONE).count();
            System.err.printf("sweep: %d of %d tasks done; esd-native sweep collect %s for the table%n", done, statuses.size(), dir);
            return done == statuses.size() ? 0 : 1;
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true, description = "A table of the tasks: pending, running, done, interrupted, failed.")
    static final class Status implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR", description = "The sweep's folder.")
        Path dir;

        @Override
        public Integer call() {
            System.out.print(new SweepTable(dir, SweepPlan.read(dir)).text());
            return 0;
        }
    }

    @Command(name = "collect", mixinStandardHelpOptions = true,
            description = "Write DIR/results.csv and DIR/results.md: every task's settings, state, final loss and output.")
    static final class Collect implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR", description = "The sweep's folder.")
        Path dir;

        @Override
        public Integer call() {
            SweepTable table = new SweepTable(dir, SweepPlan.read(dir));
            table.writeResults(dir);
            System.out.print(table.markdown());
            System.err.println(table.summary() + "; wrote " + dir.resolve(SweepTable.CSV) + " and " + dir.resolve(SweepTable.MARKDOWN));
            return 0;
        }
    }
}
