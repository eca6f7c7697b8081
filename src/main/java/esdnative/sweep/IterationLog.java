package esdnative.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The last entry of train's {@code <output>.log.jsonl} (one JSON object per iteration). */
record IterationLog(int iteration, double loss) {
    /** The last complete line's iteration and loss; null when there is no log yet (or the command writes none). */
    static IterationLog last(Path log) {
        if (!Files.isRegularFile(log)) return null;
        List<String> lines;
        try {
            lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null; // a status display does without it
        }
        for (int i = lines.size() - 1; i >= 0; i--) {
            try {
                JsonNode line = Json.mapper().readTree(lines.get(i));
                if (line != null && line.has("iteration") && line.has("loss")) {
                    return new IterationLog(line.get("iteration").asInt(), line.get("loss").asDouble());
                }
            } catch (IOException partialLine) {
                // a line being appended right now: take the one before
            }
        }
        return null;
    }
}
