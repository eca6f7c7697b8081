package esdnative.eval;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.Weights;
import esdnative.model.clip.ClipCheckpoint;
import esdnative.model.clip.ClipImageProcessor;
import esdnative.model.clip.ClipModel;
import esdnative.model.clip.ClipVisionConfig;
import esdnative.model.clip.ClipVisionModel;
import esdnative.model.clip.RgbImage;
import esdnative.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers 0.21's StableDiffusionSafetyChecker, its {@code forward} path (what StableDiffusionPipeline runs): a
 * CLIP vision tower and projection embed the image; its cosines to 3 "special care" and 17 concept embeddings,
 * minus each one's threshold, are rounded to 3 decimals; a positive special score adds 0.01 to the later special
 * scores and to every concept score; any positive concept score flags the image.
 *
 * <p>Loaded from a Stable Diffusion 1.x download's {@code safety_checker/} (config.json, model.safetensors) and
 * {@code feature_extractor/preprocessor_config.json}.
 */
public final class SafetyChecker {
    private static final String VISION_PREFIX = "vision_model.vision_model.";
    private final Backend backend;
    private final ClipVisionModel vision;
    private final ClipImageProcessor processor;
    private final Weights heads;
    private final int projectionDim, concepts, special;

    /** Per image: the rounded special and concept scores, the flagged concepts and the verdict. */
    public record Verdict(double[] specialScores, double[] conceptScores, List<Integer> badConcepts) {
        public boolean nsfw() { return !badConcepts.isEmpty(); }
    }

    private SafetyChecker(Backend backend, ClipVisionModel vision, ClipImageProcessor processor, Weights heads,
                          int projectionDim) {
        this.backend = backend;
        this.vision = vision;
        this.processor = processor;
        this.heads = heads;
        this.projectionDim = projectionDim;
        this.concepts = heads.get("concept_embeds").dim(0);
        this.special = heads.get("special_care_embeds").dim(0);
    }

    /** {@code dir}: a pipeline folder holding safety_checker/ and feature_extractor/. */
    public static SafetyChecker load(Backend backend, Path dir) {
        Path config = dir.resolve("safety_checker/config.json"), weights = dir.resolve("safety_checker/model.safetensors");
        Path preprocessor = dir.resolve("feature_extractor/preprocessor_config.json");
        for (Path p : List.of(config, weights, preprocessor)) {
            if (!Files.isRegularFile(p)) {
                throw new UserError(dir + " needs safety_checker/{config.json, model.safetensors} "
                        + "and feature_extractor/preprocessor_config.json (missing " + dir.relativize(p) + ")");
            }
        }
        JsonNode json = Json.tree(config);
        ClipVisionConfig vc = ClipVisionConfig.fromJson(json.path("vision_config"));
        int projection = json.path("projection_dim").asInt(768);
        try (SafetensorsFile file = SafetensorsFile.open(weights)) {
            int concepts = conceptCount(file, "concept_embeds"), special = conceptCount(file, "special_care_embeds");
            ClipVisionModel vision = new ClipVisionModel(backend, vc,
                    ClipCheckpoint.load(backend, ClipVisionModel.parameterShapes(vc), file, VISION_PREFIX, "safety checker"));
            Weights heads = ClipCheckpoint.load(backend, headShapes(vc.hiddenSize(), projection, concepts, special), file, "",
                    "safety checker");
            return new SafetyChecker(backend, vision, ClipImageProcessor.read(preprocessor), heads, projection);
        }
    }

    /** The projection, the concept embeddings and their thresholds, in checkpoint order. */
    static SequencedMap<String, int[]> headShapes(int hidden, int projection, int concepts, int special) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("visual_projection.weight", new int[] {projection, hidden});
        shapes.put("concept_embeds", new int[] {concepts, projection});
        shapes.put("special_care_embeds", new int[] {special, projection});
        shapes.put("concept_embeds_weights", new int[] {concepts});
        shapes.put("special_care_embeds_weights", new int[] {special});
        return shapes;
    }

    private static int conceptCount(SafetensorsFile file, String name) {
        if (file.info(name) == null) throw new UserError(file.path() + ": safety checker tensor \"" + name + "\" is missing");
        return (int) file.shape(name)[0];
    }

    public ClipImageProcessor processor() { return processor; }

    /** image_embeds [n, projection] = visual_projection(pooler_output), unnormalised. */
    public float[] imageEmbeds(float[] pixelValues, int n) {
        int s = vision.config().imageSize(), h = vision.config().hiddenSize();
        Tensor pooled = vision.forward(backend.fromHost(pixelValues, n, 3, s, s)).pooled();
        Tensor embeds = backend.zeros(n, projectionDim);
        backend.gemm(false, true, n, projectionDim, h, 1f, pooled, h, 0, heads.get("visual_projection.weight"), h, 0,
                0f, embeds, projectionDim, 0, 1);
        return backend.toHost(embeds);
    }

    /** cosine_distance(image_embeds, special_care_embeds) [n][special] and (…, concept_embeds) [n][concepts]. */
    public float[][][] cosines(float[] embeds, int n) {
        float[] unit = ClipModel.normalizeRows(embeds, n, projectionDim);
        float[] specialUnit = ClipModel.normalizeRows(backend.toHost(heads.get("special_care_embeds")), special, projectionDim);
        float[] conceptUnit = ClipModel.normalizeRows(backend.toHost(heads.get("concept_embeds")), concepts, projectionDim);
        return new float[][][] {ClipModel.cosines(unit, n, specialUnit, special, projectionDim),
                ClipModel.cosines(unit, n, conceptUnit, concepts, projectionDim)};
    }

    /** The checker's verdict on each of n preprocessed images [n, 3, S, S]. */
    public List<Verdict> check(float[] pixelValues, int n) {
        float[][][] cos = cosines(imageEmbeds(pixelValues, n), n);
        float[] specialThresholds = backend.toHost(heads.get("special_care_embeds_weights"));
        float[] conceptThresholds = backend.toHost(heads.get("concept_embeds_weights"));
        List<Verdict> verdicts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            double adjustment = 0;
            double[] specialScores = new double[special], conceptScores = new double[concepts];
            for (int j = 0; j < special; j++) {
                specialScores[j] = round3((double) cos[0][i][j] - specialThresholds[j] + adjustment);
                if (specialScores[j] > 0) adjustment = 0.01;
            }
            List<Integer> bad = new ArrayList<>();
            for (int j = 0; j < concepts; j++) {
                conceptScores[j] = round3((double) cos[1][i][j] - conceptThresholds[j] + adjustment);
                if (conceptScores[j] > 0) bad.add(j);
            }
            verdicts.add(new Verdict(specialScores, conceptScores, List.copyOf(bad)));
        }
        return verdicts;
    }

    /** The verdict on one image file's worth of RGB. */
    public Verdict check(RgbImage image) {
        return check(processor.pixelValues(image), 1).getFirst();
    }

    /** Python's round(x, 3) on a numpy float64: rint(x · 1000) / 1000. */
    static double round3(double x) {
        return Math.rint(x * 1000) / 1000;
    }
}
