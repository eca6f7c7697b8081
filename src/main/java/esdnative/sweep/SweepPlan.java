package esdnative.sweep;

import esdnative.util.UserError;
import esdnative.io.AtomicFile;
import esdnative.io.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A sweep's {@code sweep.json}: which esd-native command every task runs, from which folder, and each task's full
 * argument list and output. Written once by {@code sweep plan}; {@code sweep run} only reads it.
 *
 * @param command  the esd-native subcommand every task runs (train or uce)
 * @param workdir  the folder the plan was made in; tasks run there, so relative paths in their arguments keep working
 * @param launcher the command line that starts esd-native (java with the jar or classpath) in the batch script
 * @param grid     the grid's axes (flag name without "--" → values), in the order they vary (last fastest)
 */
public record SweepPlan(int version, String command, String workdir, List<String> launcher,
                        Map<String, List<String>> grid, List<Task> tasks) {
    static final String FILE = "sweep.json";
    static final int VERSION = 1;

    /**
     * One task: one esd-native invocation.
     *
     * @param name   a readable, unique name, e.g. "001-square-lr_2e-5"; also the output's name
     * @param values this task's grid values (axis → value)
     * @param args   the full argument list after the command name, --output included
     */
    public record Task(int index, String name, String concept, Map<String, String> values, List<String> args,
                       String output) {
        public Path outputPath() { return Path.of(output); }

        /** train's checkpoint beside the output (train names it so: the output without .safetensors + suffix). */
        public Path checkpoint() { return sibling(".checkpoint.safetensors"); }

        /** train's per-iteration log beside the output. */
        public Path iterationLog() { return sibling(".log.jsonl"); }

        private Path sibling(String suffix) {
            Path out = outputPath();
            return out.resolveSibling(out.getFileName().toString().replaceAll("\\.safetensors$", "") + suffix);
        }
    }

    public Task task(int index) {
        if (index < 0 || index >= tasks.size()) {
            throw new UserError("--task: " + index + " is not a task of this sweep (0 to " + (tasks.size() - 1) + ")");
        }
        return tasks.get(index);
    }

    /** Reads DIR/sweep.json. */
    public static SweepPlan read(Path dir) {
        Path file = dir.resolve(FILE);
        SweepPlan plan = Json.read(file, SweepPlan.class);
        if (plan.version() != VERSION || plan.tasks() == null || plan.launcher() == null || plan.command() == null) {
            throw new UserError(file + ": not a sweep plan of this esd-native version (expected version " + VERSION + ")");
        }
        return plan;
    }

    void write(Path dir) {
        try {
            byte[] json = Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(this);
            AtomicFile.write(dir.resolve(FILE), out -> out.write(ByteBuffer.wrap(json)));
        } catch (IOException e) {
            throw new UserError(dir.resolve(FILE) + ": cannot write: " + e.getMessage(), e);
        }
    }
}
