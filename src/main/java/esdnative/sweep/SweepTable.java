package esdnative.sweep;

import esdnative.io.AtomicFile;
import esdnative.sweep.TaskStatus.State;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A sweep's tasks as rows, read from the status files: {@code sweep status} prints them as a table, {@code sweep
 * collect} writes them as DIR/results.csv and DIR/results.md.
 */
final class SweepTable {
    static final String CSV = "results.csv";
    static final String MARKDOWN = "results.md";

    /** One task as the table shows it; iteration and loss are live (train's log) while the task runs. */
    record Row(SweepPlan.Task task, State state, int attempts, Integer iteration, Double loss, Double seconds, String error) {}

    private final SweepPlan plan;
    private final List<Row> rows;

    SweepTable(Path dir, SweepPlan plan) {
        this.plan = plan;
        this.rows = new ArrayList<>();
        String here = TaskRunner.host();
        for (SweepPlan.Task t : plan.tasks()) {
            TaskStatus s = TaskStatus.read(TaskRunner.taskDir(dir, t.index()));
            if (s == null) {
                rows.add(new Row(t, State.PENDING, 0, null, null, null, null));
                continue;
            }
            State state = s.state();
            String error = s.error();
            if (state == State.RUNNING && here.equals(s.host()) && s.pid() != null && ProcessHandle.of(s.pid()).isEmpty()) {
                // its runner is gone without recording an end (killed outright): the next run resumes it
                state = State.INTERRUPTED;
                error = "its sweep run (pid " + s.pid() + ") is gone";
            }
            IterationLog live = state == State.RUNNING ? IterationLog.last(t.iterationLog()) : null;
            rows.add(new Row(t, state, s.attempts(), live != null ? (Integer) live.iteration() : s.iteration(),
                    live != null ? (Double) live.loss() : s.loss(), s.seconds(), error));
        }
    }

    List<Row> rows() { return rows; }

    /** "3 tasks: 2 done, 1 running". */
    String summary() {
        Map<State, Integer> counts = new EnumMap<>(State.class);
        for (Row r : rows) counts.merge(r.state(), 1, Integer::sum);
        return rows.size() + " tasks: " + counts.entrySet().stream().map(e -> e.getValue() + " " + e.getKey().id())
                .collect(Collectors.joining(", "));
    }

    /** The status table: one line per task, then the summary. */
    String text() {
        StringBuilder t = new StringBuilder(String.format(Locale.ROOT, "%-5s %-12s %8s %9s %12s %9s  %s%n",
                "task", "state", "attempts", "iteration", "loss", "seconds", "name"));
        for (Row r : rows) {
            t.append(String.format(Locale.ROOT, "%-5d %-12s %8d %9s %12s %9s  %s%n", r.task().index(), r.state().id(),
                    r.attempts(), r.iteration() != null ? r.iteration().toString() : "-", format(r.loss(), "%.6f"),
                    format(r.seconds(), "%.1f"), r.task().name()));
            if (r.error() != null && r.state() != State.DONE) t.append("      ").append(r.error()).append('\n');
        }
        return t.append(summary()).append('\n').toString();
    }

    /** Column names and per-row values shared by the CSV and the Markdown. */
    private List<String> header() {
        List<String> h = new ArrayList<>(List.of("task", "name", "concept"));
        h.addAll(plan.grid().keySet());
        h.addAll(List.of("state", "iteration", "final_loss", "seconds", "output"));
        return h;
    }

    private List<String> cells(Row r) {
        List<String> c = new ArrayList<>(List.of(Integer.toString(r.task().index()), r.task().name(), r.task().concept()));
        for (String axis : plan.grid().keySet()) c.add(r.task().values().get(axis));
        c.addAll(List.of(r.state().id(), r.iteration() != null ? r.iteration().toString() : "",
                r.loss() != null ? Double.toString(r.loss()) : "", r.seconds() != null ? String.format(Locale.ROOT, "%.1f", r.seconds()) : "",
                r.task().output()));
        return c;
    }

    String csv() {
        StringBuilder s = new StringBuilder(csvLine(header()));
        for (Row r : rows) s.append(csvLine(cells(r)));
        return s.toString();
    }

    String markdown() {
        List<String> h = header();
        StringBuilder s = new StringBuilder("| ").append(String.join(" | ", h)).append(" |\n|");
        s.append("---|".repeat(h.size())).append('\n');
        for (Row r : rows) {
            s.append("| ").append(cells(r).stream().map(c -> c.replace("|", "\\|")).collect(Collectors.joining(" | "))).append(" |\n");
        }
        return s.toString();
    }

    /** Writes DIR/results.csv and DIR/results.md. */
    void writeResults(Path dir) {
        write(dir.resolve(CSV), csv());
        write(dir.resolve(MARKDOWN), "# Sweep " + dir + "\n\n" + summary() + "\n\n" + markdown());
    }

    private static void write(Path file, String text) {
        AtomicFile.write(file, out -> out.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8))));
    }

    private static String csvLine(List<String> cells) {
        return cells.stream().map(c -> c.contains(",") || c.contains("\"") || c.contains("\n")
                ? "\"" + c.replace("\"", "\"\"") + "\"" : c).collect(Collectors.joining(",")) + "\n";
    }

    private static String format(Double value, String pattern) {
        return value != null ? String.format(Locale.ROOT, pattern, value) : "-";
    }
}
