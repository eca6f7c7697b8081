package esdnative.esd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.util.UserError;
import esdnative.io.AtomicFile;
import esdnative.io.Json;
import esdnative.io.Npy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Per-iteration records for reproducing a run across implementations: {@code iter-NNNNNN.json} (concept, t_enc,
 * t_ddpm, loss, the UNet evaluations it ran; with trajectory reuse the trajectory's number, z being its point
 * t_enc) and {@code iter-NNNNNN-start.npy} (the start noise of z's sampling). {@code --trace-dir} writes them;
 * {@code --replay-dir} reads the choices back instead of drawing them.
 */
public final class Trace {
    private Trace() {}

    /** What an iteration drew and its loss: the trace record, and the training log's line (which adds seconds). */
    public static ObjectNode record(EsdTrainer.Iteration it) {
        ObjectNode json = Json.mapper().createObjectNode();
        json.put("iteration", it.index());
        json.put("concept", it.draw().concept());
        json.put("t_enc", it.draw().plan().tEnc());
        json.put("t_ddpm", it.draw().plan().tDdpm());
        if (it.draw().trajectory() > 0) json.put("trajectory", it.draw().trajectory());
        json.put("loss", it.loss());
        json.put("unet_forwards", it.evaluations().forwards());
        json.put("unet_backwards", it.evaluations().backwards());
        return json;
    }

    public static void write(Path dir, EsdTrainer.Iteration it, int[] latentShape) {
        byte[] text = (record(it).toPrettyString() + "\n").getBytes(StandardCharsets.UTF_8);
        AtomicFile.write(dir.resolve(stem(it.index()) + ".json"), out -> out.write(ByteBuffer.wrap(text)));
        Npy.writeFloats(dir.resolve(stem(it.index()) + "-start.npy"), it.draw().startCode(), latentShape);
    }

    /** The recorded choices of iteration {@code index} (1-based), as the trainer would have drawn them. */
    public static EsdTrainer.Draw read(Path dir, int index, EsdTrainer trainer) {
        Path jsonFile = dir.resolve(stem(index) + ".json");
        Path noiseFile = dir.resolve(stem(index) + "-start.npy");
        if (!Files.isRegularFile(jsonFile) || !Files.isRegularFile(noiseFile)) {
            throw new UserError("trace " + dir + " has no record of iteration " + index + " (" + jsonFile.getFileName()
                    + " and " + noiseFile.getFileName() + ")");
        }
        JsonNode json = Json.tree(jsonFile);
        for (String key : new String[] {"concept", "t_enc", "t_ddpm"}) {
            if (!json.hasNonNull(key)) throw new UserError("trace file " + jsonFile + " lacks \"" + key + "\"");
        }
        JsonNode trajectory = json.path("trajectory");
        if (!json.get("t_enc").isInt() || !json.get("t_ddpm").isInt() || !json.get("concept").isTextual()
                || !(trajectory.isMissingNode() || trajectory.isInt() && trajectory.asInt() > 0)) {
            throw new UserError("trace file " + jsonFile + ": concept must be text, t_enc and t_ddpm integers, "
                    + "trajectory (if any) a positive integer");
        }
        try {
            return trainer.replayed(json.get("concept").asText(), json.get("t_enc").asInt(), json.get("t_ddpm").asInt(),
                    Npy.read(noiseFile).floats(), trajectory.asInt(0));
        } catch (UserError e) {
            throw new UserError("trace file " + jsonFile.getFileName() + ": " + e.getMessage().replaceFirst("^replay: ", ""), e);
        }
    }

    private static String stem(int index) {
        return String.format("iter-%06d", index);
    }
}
