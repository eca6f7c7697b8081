package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.checkpoint.TensorEntries;
import esdnative.util.UserError;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Collectors;

/**
 * A resumable training state in one safetensors file: the trained tensors and both Adam moments (each one flat
 * tensor per buffer of the trained set: "trained", "adam.m", "adam.v", then "trained.1", ... beyond 2³¹ elements), and
 * in the metadata the iteration, the Adam step, the generator state and what identifies the run
 * (method, concepts, which tensors are trained, and every setting that shapes the iterations: learning rate,
 * guidance, DDIM steps, schedule, resolution, seed, sampler, reuse), so that a checkpoint of another run is refused rather than
 * continued with other values. Only finite weights are saved: a checkpoint is always a good state.
 * With trajectory reuse it also holds the pool's state (the trajectory's start noise as {@code pool.start}, its
 * number, concept, point order and position in the metadata): the points are recomputed from it on resume.
 */
public final class Checkpoint {
    private static final String FORMAT = "esd-native-checkpoint-1";

    private Checkpoint() {}

    public static void save(Path file, EsdTrainer trainer) {
        Backend be = trainer.backend();
        TrainableSubset subset = trainer.subset();
        List<Tensor> buffers = subset.trained().buffers();
        SequencedMap<String, Entry> tensors = new LinkedHashMap<>();
        for (int i = 0; i < buffers.size(); i++) {   // fetched while written: no host copy of the whole state
            Tensor buffer = buffers.get(i);
            long[] shape = {buffer.size()};
            tensors.put(bufferName("trained", i), Entry.deferred(DType.F32, shape,
                    (from, count) -> requireFinite(be.toHost(buffer.view(from, count)), file, trainer)));
            tensors.put(bufferName("adam.m", i), TensorEntries.of(be, trainer.adam().firstMoment(i), DType.F32, shape));
            tensors.put(bufferName("adam.v", i), TensorEntries.of(be, trainer.adam().secondMoment(i), DType.F32, shape));
        }
        Map<String, String> meta = new LinkedHashMap<>(identity(trainer));
        meta.put("iteration", Integer.toString(trainer.completed()));
        meta.put("adam_step", Integer.toString(trainer.adam().stepCount()));
        meta.put("rng", encode(trainer.rng().state()));
        TrajectoryPool.State pool = trainer.pool().state();
        if (pool != null) {
            tensors.put("pool.start", Entry.floats(DType.F32, new long[] {pool.start().length}, pool.start()));
            meta.put("pool.trajectory", Integer.toString(pool.trajectory()));
            meta.put("pool.concept", pool.concept());
            meta.put("pool.order", Arrays.stream(pool.order()).mapToObj(Integer::toString).collect(Collectors.joining(",")));
            meta.put("pool.used", Integer.toString(pool.used()));
        }
        SafetensorsWriter.write(file, tensors, meta);
    }

    /**
     * {@code trained}, refused when a value is not finite; the refusal stops the write, which leaves {@code file} as it
     * was (the last good state, if any).
     */
    private static float[] requireFinite(float[] trained, Path file, EsdTrainer trainer) {
        for (float v : trained) {
            if (!Float.isFinite(v)) {
                throw new UserError("iteration " + trainer.completed() + ": the trained weights hold " + v + " (input weights "
                        + "that are not finite, or --lr " + trainer.settings().lr() + " too large); stopped; not saving them"
                        + (Files.exists(file) ? ", " + file + " keeps the last good state" : ""));
            }
        }
        return trained;
    }

    /** Restores a saved state into a trainer built with the same model and settings; returns the iteration reached. */
    public static int restore(Path file, EsdTrainer trainer) {
        if (!Files.isRegularFile(file)) throw new UserError("checkpoint " + file + " not found");
        Backend be = trainer.backend();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, String> meta = f.metadata();
            if (!FORMAT.equals(meta.get("format"))) throw new UserError(file + " is not an esd-native checkpoint");
            // the mode first: a --fast checkpoint differs from a paper run in its schedule too, and this says why
            boolean pooled = meta.containsKey("pool.trajectory");
            if (pooled != (trainer.settings().reuse() > 0)) {
                throw new ReuseMismatch("checkpoint " + file + (pooled
                        ? " was saved by a run with trajectory reuse; resume it with the same settings"
                        : " was saved by a run without trajectory reuse; resume it without trajectory reuse"));
            }
            List<String> differences = new ArrayList<>();
            identity(trainer).forEach((key, expected) -> {
                if (!expected.equals(meta.get(key))) {
                    differences.add(key + " '" + (meta.containsKey(key) ? meta.get(key) : "(not recorded)") + "' (this run: '" + expected + "')");
                }
            });
            if (!differences.isEmpty()) {
                throw new UserError("checkpoint " + file + " is from another run: its " + String.join(", ", differences)
                        + "; resume with the settings it was made with");
            }
            int completed = Integer.parseInt(meta.get("iteration"));
            int planned = trainer.settings().iterations();
            if (completed > planned) {
                throw new BeyondPlan("checkpoint " + file + " has completed " + completed + " iterations, more than this run's "
                        + planned + "; plan " + completed + " iterations or more");
            }
            List<Tensor> buffers = trainer.subset().trained().buffers();
            List<float[]> firstMoment = new ArrayList<>(), secondMoment = new ArrayList<>();
            for (int i = 0; i < buffers.size(); i++) {
                be.copyFromHost(buffers.get(i), f.readFloats(bufferName("trained", i)), 0);
                firstMoment.add(f.readFloats(bufferName("adam.m", i)));
                secondMoment.add(f.readFloats(bufferName("adam.v", i)));
            }
            trainer.adam().restore(be, Integer.parseInt(meta.get("adam_step")), firstMoment, secondMoment);
            trainer.rng().restore(decode(meta.get("rng")));
            if (pooled) {
                int[] order = Arrays.stream(meta.get("pool.order").split(",")).mapToInt(Integer::parseInt).toArray();
                trainer.pool().restore(new TrajectoryPool.State(Integer.parseInt(meta.get("pool.trajectory")),
                        meta.get("pool.concept"), f.readFloats("pool.start"), order, Integer.parseInt(meta.get("pool.used"))));
            }
            trainer.resumeAt(completed);
            return completed;
        } catch (NumberFormatException | NullPointerException e) {
            throw new UserError("checkpoint " + file + " has malformed metadata", e);
        }
    }

    /** A checkpoint that has completed more iterations than the resuming run plans (a command names its flag). */
    public static final class BeyondPlan extends UserError {
        BeyondPlan(String message) {
            super(message);
        }
    }

    /** The entry of buffer {@code i} (trained sets beyond 2³¹ elements span several): "trained", "trained.1", ... */
    private static String bufferName(String name, int i) {
        return i == 0 ? name : name + "." + i;
    }

    /** What must agree between a checkpoint and the run resuming it. */
    private static Map<String, String> identity(EsdTrainer t) {
        Map<String, String> id = new LinkedHashMap<>();
        id.put("format", FORMAT);
        id.put("method", t.settings().method().id());
        id.put("concepts", String.join(", ", t.settings().concepts()));
        id.put("trained_tensors", Integer.toHexString(String.join("\n", t.subset().trained().asMap().keySet()).hashCode()));
        id.put("trained_parameters", Long.toString(t.subset().parameterCount()));
        EsdTrainer.Settings s = t.settings();
        id.put("lr", Float.toString(s.lr()));
        id.put("negative_guidance", Float.toString(s.negativeGuidance()));
        id.put("start_guidance", Float.toString(s.startGuidance()));
        id.put("ddim_steps", Integer.toString(s.ddimSteps()));
        id.put("schedule", s.schedule().id());
        id.put("resolution", Integer.toString(s.resolution()));
        id.put("seed", Long.toString(s.seed()));
        id.put("sampler", s.sampler().id());
        id.put("reuse", Integer.toString(s.reuse()));
        if (s.target() != Target.PAPER) id.put("target", s.target().id());   // a paper-target checkpoint: as before
        return id;
    }

    private static String encode(long[] state) {
        StringBuilder sb = new StringBuilder();
        for (long s : state) sb.append(sb.isEmpty() ? "" : ",").append(HexFormat.of().toHexDigits(s));
        return sb.toString();
    }

    private static long[] decode(String s) {
        String[] parts = s.split(",");
        long[] state = new long[parts.length];
        for (int i = 0; i < parts.length; i++) state[i] = HexFormat.fromHexDigitsToLong(parts[i]);
        return state;
    }
}
