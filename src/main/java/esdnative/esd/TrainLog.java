package esdnative.esd;

import esdnative.util.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.io.AtomicFile;
import esdnative.io.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * The training log beside the output: one JSON object per iteration (see {@link Trace#record}) plus its seconds.
 * It describes one run: a new run starts it afresh, a resumed one keeps the lines up to the checkpoint's iteration
 * (a run killed after its last checkpoint logged iterations that the resumed run does again).
 */
final class TrainLog {
    private TrainLog() {}

    /** Empties the log, or keeps its first {@code iteration} iterations when resuming from there. */
    static void startAt(Path log, int iteration) {
        if (!Files.exists(log)) return;
        try {
            List<String> kept = iteration == 0 ? List.of()
                    : Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(line -> iterationOf(line) <= iteration).toList();
            byte[] text = kept.stream().map(line -> line + "\n").reduce("", String::concat).getBytes(StandardCharsets.UTF_8);
            AtomicFile.write(log, out -> out.write(ByteBuffer.wrap(text)));
        } catch (IOException e) {
            throw new UserError("cannot read the log " + log + ": " + e.getMessage(), e);
        }
    }

    /** Appends one iteration; a non-finite loss is written as null (JSON has no NaN). */
    static void append(Path log, EsdTrainer.Iteration it) {
        ObjectNode line = Trace.record(it);
        if (!Float.isFinite(it.loss())) line.putNull("loss");
        line.put("seconds", it.seconds());
        try {
            Files.writeString(log, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UserError("cannot append to the log " + log + ": " + e.getMessage(), e);
        }
    }

    /** a line's iteration; a line that is not one (cut by a kill) counts as past every checkpoint */
    private static int iterationOf(String line) {
        try {
            JsonNode node = Json.mapper().readTree(line);
            return node != null && node.path("iteration").canConvertToInt() ? node.get("iteration").asInt() : Integer.MAX_VALUE;
        } catch (IOException e) {
            return Integer.MAX_VALUE;
        }
    }
}
