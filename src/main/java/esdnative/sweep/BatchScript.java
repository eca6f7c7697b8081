package esdnative.sweep;

import esdnative.util.UserError;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/** The Slurm batch script of a sweep: one job array, element I runs {@code esd-native sweep run DIR --task I}. */
final class BatchScript {
    static final String FILE = "sweep.sbatch";
    static final String LOGS = "logs";

    /**
     * What the user asked of Slurm; null fields are left to the cluster's defaults.
     *
     * @param maxRunning the array's %max (at most this many tasks at once)
     * @param gpu        ask for one GPU per task (--gres=gpu:1)
     * @param extra      further #SBATCH lines, e.g. "--account=lab" or "#SBATCH --qos=low"
     */
    record Options(String jobName, String partition, String time, String mem, Integer cpusPerTask, Integer maxRunning,
                   boolean gpu, List<String> extra) {
        Options {
            if (cpusPerTask != null && cpusPerTask < 1) throw new UserError("--cpus-per-task must be at least 1, got " + cpusPerTask);
            if (maxRunning != null && maxRunning < 1) throw new UserError("--max-running must be at least 1, got " + maxRunning);
            for (String value : new String[] {jobName, partition, time, mem}) {
                if (value != null && (value.isEmpty() || value.chars().anyMatch(Character::isWhitespace))) {
                    throw new UserError("Slurm option value '" + value + "' is empty or contains a space");
                }
            }
            extra = extra == null ? List.of() : List.copyOf(extra);
            for (String line : extra) {
                if (line.isBlank() || line.contains("\n")) throw new UserError("--sbatch: '" + line + "' is not one #SBATCH line");
            }
        }
    }

    private BatchScript() {}

    /** The script's text for a sweep of {@code tasks} tasks in {@code dir} started with {@code launcher}. */
    static String text(Path dir, int tasks, String command, List<String> launcher, Options o) {
        StringBuilder s = new StringBuilder("#!/bin/bash\n");
        s.append("# esd-native sweep: ").append(tasks).append(" tasks of `esd-native ").append(command).append("`, planned in ")
                .append(dir).append(" (").append(SweepPlan.FILE).append(")\n");
        s.append("# submit: sbatch ").append(dir.resolve(FILE)).append("    progress: esd-native sweep status ").append(dir).append('\n');
        s.append("#SBATCH --job-name=").append(o.jobName()).append('\n');
        s.append("#SBATCH --array=0-").append(tasks - 1).append(o.maxRunning() != null ? "%" + o.maxRunning() : "").append('\n');
        s.append("#SBATCH --output=").append(dir.resolve(LOGS)).append("/%A_%a.out\n");
        if (o.partition() != null) s.append("#SBATCH --partition=").append(o.partition()).append('\n');
        if (o.time() != null) s.append("#SBATCH --time=").append(o.time()).append('\n');
        if (o.mem() != null) s.append("#SBATCH --mem=").append(o.mem()).append('\n');
        if (o.cpusPerTask() != null) s.append("#SBATCH --cpus-per-task=").append(o.cpusPerTask()).append('\n');
        if (o.gpu()) s.append("#SBATCH --gres=gpu:1\n");
        for (String line : o.extra()) {
            s.append(line.startsWith("#SBATCH") ? line : "#SBATCH " + line).append('\n');
        }
        s.append("set -eu\n");
        s.append("# the CPU backend's threads: the CPUs Slurm gave the task\n");
        s.append("if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export ESD_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n");
        s.append("exec ").append(launcher.stream().map(BatchScript::quote).collect(Collectors.joining(" ")))
                .append(" sweep run ").append(quote(dir.toString())).append(" --task \"$SLURM_ARRAY_TASK_ID\"\n");
        return s.toString();
    }

    /** One shell word, single-quoted. */
    static String quote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }
}
