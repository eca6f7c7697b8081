package esdnative.sweep;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import esdnative.util.UserError;
import esdnative.io.AtomicFile;
import esdnative.io.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * DIR/tasks/I/status.json: where task I stands, written atomically by the {@code sweep run} that runs it. No file:
 * the task has not started. {@code iteration} and {@code loss} are the last line of train's per-iteration log.
 *
 * @param attempts  how many times a run started the task (2 or more: it was resumed or retried)
 * @param resumed   whether the latest attempt continued from a checkpoint
 * @param exitCode  the esd-native process's exit status (130: it stopped on a signal after writing a checkpoint)
 * @param error     the reason a failed task failed (its last "esd-native:" line), or why it stopped
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
record TaskStatus(int task, State state, String started, String finished, Double seconds, int attempts, boolean resumed,
                  Integer iteration, Double loss, String output, String host, Long pid, String slurmJob,
                  Integer exitCode, String error) {
    static final String FILE = "status.json";

    enum State {
        @JsonProperty("pending") PENDING,
        @JsonProperty("running") RUNNING,
        @JsonProperty("done") DONE,
        @JsonProperty("interrupted") INTERRUPTED,
        @JsonProperty("failed") FAILED;

        String id() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    /** The task's status, or null when it never started. */
    static TaskStatus read(Path taskDir) {
        Path file = taskDir.resolve(FILE);
        return Files.exists(file) ? Json.read(file, TaskStatus.class) : null;
    }

    void write(Path taskDir) {
        try {
            byte[] json = Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(this);
            AtomicFile.write(taskDir.resolve(FILE), out -> out.write(ByteBuffer.wrap(json)));
        } catch (IOException e) {
            throw new UserError(taskDir.resolve(FILE) + ": cannot write: " + e.getMessage(), e);
        }
    }
}
