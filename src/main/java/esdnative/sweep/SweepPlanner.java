package esdnative.sweep;

import esdnative.util.UserError;
import esdnative.io.AtomicFile;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Turns concepts × grid into tasks: task k erases one concept with one grid point, in a fixed order (concepts as
 * given, then the grid's points, the last axis fastest), and names every value it needs — seed and output included —
 * so that a task's result depends on nothing but sweep.json.
 */
final class SweepPlanner {
    /** The flag that names a task's concept, per command. */
    private static final Map<String, String> CONCEPT_FLAG = Map.of("train", "--concept", "uce", "--erase");
    /** Flags a sweep sets itself or that would make tasks collide. */
    private static final Set<String> OWN_FLAGS = Set.of("--output", "--resume", "--concept", "--concepts", "--preset",
            "--erase", "--erase-file");

    /**
     * What {@code sweep plan} was given.
     *
     * @param target      the esd-native subcommand the tasks run, to check every task's arguments before anything runs
     * @param passthrough the flags every task gets as they are (--model, --iterations, --backend, ...)
     */
    record Request(String command, CommandLine target, List<String> concepts, Grid grid, List<String> passthrough,
                   Path out, BatchScript.Options slurm) {}

    private SweepPlanner() {}

    /** Reads a concepts file: one concept per line; blank lines and lines starting with '#' are skipped. */
    static List<String> readConcepts(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UserError("--concepts: cannot read " + file + ": " + e.getMessage(), e);
        }
        Set<String> concepts = new LinkedHashSet<>();
        for (int i = 0; i < lines.size(); i++) {
            String c = lines.get(i).trim();
            if (c.isEmpty() || c.startsWith("#")) continue;
            if (!concepts.add(c)) throw new UserError("--concepts: " + file + " line " + (i + 1) + " repeats '" + c + "'");
        }
        if (concepts.isEmpty()) throw new UserError("--concepts: " + file + " names no concept");
        return List.copyOf(concepts);
    }

    /** Builds the plan and writes DIR/sweep.json, DIR/sweep.sbatch and the folders the tasks write into. */
    static SweepPlan plan(Request r) {
        String conceptFlag = CONCEPT_FLAG.get(r.command());
        if (conceptFlag == null) throw new UserError("--command: '" + r.command() + "' cannot be swept; one of " + CONCEPT_FLAG.keySet());
        checkFlags(r);
        Path dir = r.out().toAbsolutePath().normalize();
        if (Files.exists(dir.resolve(SweepPlan.FILE))) {
            throw new UserError("--out: " + dir + " already holds a sweep; plan into a new folder");
        }

        List<Map<String, String>> points = r.grid().points();
        int count = r.concepts().size() * points.size();
        int digits = Math.max(3, Integer.toString(count - 1).length());
        List<SweepPlan.Task> tasks = new ArrayList<>();
        for (String concept : r.concepts()) {
            for (Map<String, String> point : points) {
                int index = tasks.size();
                StringBuilder name = new StringBuilder(String.format(Locale.ROOT, "%0" + digits + "d-%s", index, slug(concept)));
                List<String> args = new ArrayList<>(r.passthrough());
                args.add(conceptFlag);
                args.add(concept);
                point.forEach((flag, value) -> {
                    args.add("--" + flag);
                    args.add(value);
                    name.append('-').append(flag).append('_').append(slug(value));
                });
                // every train task names its seed: the one given (flag or grid) or train's default, 0
                if (r.command().equals("train") && value(args, "--seed") == null) {
                    args.add("--seed");
                    args.add("0");
                }
                String base = name.length() > 96 ? name.substring(0, 96) : name.toString();
                Path output = dir.resolve("outputs").resolve(base + (writesSingleFile(args) ? ".safetensors" : ""));
                args.add("--output");
                args.add(output.toString());
                check(r.target(), index, args);
                tasks.add(new SweepPlan.Task(index, base, concept, point, List.copyOf(args), output.toString()));
            }
        }

        List<String> launcher = Launcher.current();
        SweepPlan plan = new SweepPlan(SweepPlan.VERSION, r.command(), Path.of("").toAbsolutePath().toString(), launcher,
                r.grid().axes(), tasks);
        try {
            Files.createDirectories(dir.resolve("outputs"));
            Files.createDirectories(dir.resolve("tasks"));
            Files.createDirectories(dir.resolve(BatchScript.LOGS));
        } catch (IOException e) {
            throw new UserError("--out: cannot create " + dir + ": " + e.getMessage(), e);
        }
        String script = BatchScript.text(dir, tasks.size(), r.command(), launcher, r.slurm());
        AtomicFile.write(dir.resolve(BatchScript.FILE), out -> out.write(ByteBuffer.wrap(script.getBytes(StandardCharsets.UTF_8))));
        plan.write(dir);
        return plan;
    }

    /** Refuses flags the sweep sets itself, a grid axis also given as a flag, and a train sweep without --model. */
    private static void checkFlags(Request r) {
        for (String arg : r.passthrough()) {
            String flag = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            if (OWN_FLAGS.contains(flag)) throw new UserError(flag + ": the sweep sets this for each task; it cannot be passed through");
        }
        for (String axis : r.grid().axes().keySet()) {
            if (OWN_FLAGS.contains("--" + axis)) throw new UserError("--grid: --" + axis + " is set by the sweep for each task");
            if (value(r.passthrough(), "--" + axis) != null) throw new UserError("--grid: --" + axis + " is also given as a flag");
        }
        if (value(r.passthrough(), "--model") == null && !r.grid().axes().containsKey("model")) {
            throw new UserError("--model: a sweep needs the model to erase from (train without --model runs the toy demo)");
        }
    }

    /** Parses a task's arguments as its command would, so a typo fails here and not in a hundred jobs. */
    private static void check(CommandLine target, int index, List<String> args) {
        try {
            target.parseArgs(args.toArray(String[]::new));
        } catch (CommandLine.ParameterException e) {
            throw new UserError("esd-native " + target.getCommandName() + " refuses task " + index + "'s arguments: " + e.getMessage());
        }
    }

    /** Whether the command writes a single file: --format says so, or the model is a file and --format is not given. */
    private static boolean writesSingleFile(List<String> args) {
        String format = value(args, "--format");
        if (format != null) return !format.equals("diffusers");
        String model = value(args, "--model");
        return model != null && !Files.isDirectory(Path.of(model));
    }

    /** The value of {@code flag} in "--flag value" or "--flag=value" form; null when absent. */
    static String value(List<String> args, String flag) {
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals(flag) && i + 1 < args.size()) return args.get(i + 1);
            if (a.startsWith(flag + "=")) return a.substring(flag.length() + 1);
        }
        return null;
    }

    /** A file-name-safe short form: "Van Gogh" → "van-gogh", "/m/sd-v1-4.safetensors" → "sd-v1-4.safetensors". */
    static String slug(String text) {
        String last = text.contains("/") ? text.substring(text.lastIndexOf('/') + 1) : text;
        String s = last.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9.+_-]+", "-").replaceAll("^-+|-+$", "");
        if (s.length() > 40) s = s.substring(0, 40);
        return s.isEmpty() ? "x" : s;
    }
}
