package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.Weights;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.SequencedMap;

/**
 * transformers' CLIPModel for image-text scoring: the text tower ({@link ClipTextModel}), the vision tower
 * ({@link ClipVisionModel}), the bias-free projections {@code text_projection} [proj, text hidden] and
 * {@code visual_projection} [proj, vision hidden] into the joint space, and the scalar {@code logit_scale}.
 * Loaded from a transformers folder (config.json, model.safetensors; e.g. openai/clip-vit-large-patch14).
 */
public final class ClipModel {
    private final Backend backend;
    private final ClipTextModel text;
    private final ClipVisionModel vision;
    private final Weights heads;
    private final int projectionDim;

    private ClipModel(Backend backend, ClipTextModel text, ClipVisionModel vision, Weights heads, int projectionDim) {
        this.backend = backend;
        this.text = text;
        this.vision = vision;
        this.heads = heads;
        this.projectionDim = projectionDim;
    }

    /** Text and vision configurations and the joint space's width, from a CLIPModel config.json. */
    public record Config(ClipTextConfig text, ClipVisionConfig vision, int projectionDim) {
        public static Config read(Path file) {
            JsonNode json = Json.tree(file);
            if (!json.has("vision_config") && !json.has("text_config")) {
                throw new UserError(file + ": not a CLIPModel config (no text_config/vision_config)");
            }
            return new Config(ClipTextConfig.read(file), ClipVisionConfig.fromJson(json.path("vision_config")),
                    json.path("projection_dim").asInt(512));
        }
    }

    /** The projections and logit_scale, in checkpoint order. */
    public static SequencedMap<String, int[]> headShapes(Config c) {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("visual_projection.weight", new int[] {c.projectionDim(), c.vision().hiddenSize()});
        shapes.put("text_projection.weight", new int[] {c.projectionDim(), c.text().hiddenSize()});
        shapes.put("logit_scale", new int[0]);
        return shapes;
    }

    /** A transformers CLIPModel folder: config.json and model.safetensors. */
    public static ClipModel load(Backend backend, Path folder) {
        Path configFile = folder.resolve("config.json"), weightsFile = folder.resolve("model.safetensors");
        if (!Files.isRegularFile(configFile) || !Files.isRegularFile(weightsFile)) {
            throw new UserError(folder + " needs config.json and model.safetensors (a transformers CLIPModel)");
        }
        Config c = Config.read(configFile);
        try (SafetensorsFile file = SafetensorsFile.open(weightsFile)) {
            ClipTextModel text = new ClipTextModel(backend, c.text(),
                    ClipCheckpoint.load(backend, ClipTextModel.parameterShapes(c.text()), file, "text_model.", "text encoder"));
            ClipVisionModel vision = new ClipVisionModel(backend, c.vision(),
                    ClipCheckpoint.load(backend, ClipVisionModel.parameterShapes(c.vision()), file, "vision_model.", "vision tower"));
            Weights heads = ClipCheckpoint.load(backend, headShapes(c), file, "", "CLIP");
            return new ClipModel(backend, text, vision, heads, c.projectionDim());
        }
    }

    public ClipVisionModel vision() { return vision; }

    public ClipTextModel text() { return text; }

    public int projectionDim() { return projectionDim; }

    /** exp(logit_scale), the temperature of the image-text logits. */
    public float logitScaleExp() {
        return (float) Math.exp(backend.toHost(heads.get("logit_scale"))[0]);
    }

    /** get_image_features: visual_projection(pooler_output) [n, projection] for pixel values [n, 3, S, S]. */
    public Tensor imageFeatures(Tensor pixels) {
        Tensor pooled = vision.forward(pixels).pooled();
        return project(pooled, pixels.dim(0), vision.config().hiddenSize(), "visual_projection");
    }

    /**
     * get_text_features: text_projection of the final-normed state at each sequence's end token, found as
     * transformers 4.33 finds it: the first position of the largest id (EOS is the vocabulary's last token).
     * ids [batch, seq] row-major → [batch, projection].
     */
    public Tensor textFeatures(int[] ids, int batch) {
        Tensor pooled = text.pooled(text.forward(ids, batch), ids, batch);
        return project(pooled, batch, text.config().hiddenSize(), "text_projection");
    }

    /** A bias-free projection x [rows, in] → [rows, projection] by the head {@code name}. */
    private Tensor project(Tensor x, int rows, int in, String name) {
        return new Linear(name, in, projectionDim, false).forward(backend, heads, x, rows);
    }

    /** Rows of x [rows, cols] scaled to unit L2 norm (on the host; the sum of squares in double). */
    public static float[] normalizeRows(float[] x, int rows, int cols) {
        float[] out = new float[x.length];
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int c = 0; c < cols; c++) sum += (double) x[r * cols + c] * x[r * cols + c];
            float norm = (float) Math.sqrt(sum);
            for (int c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] / norm;
        }
        return out;
    }

    /** cos[i][j] of unit rows a [n, d] and b [m, d]. */
    public static float[][] cosines(float[] unitA, int n, float[] unitB, int m, int d) {
        float[][] cos = new float[n][m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += (double) unitA[i * d + k] * unitB[j * d + k];
                cos[i][j] = (float) dot;
            }
        }
        return cos;
    }

    /** torchmetrics' CLIPScore of one image-caption pair: 100 · max(cos, 0). */
    public static float clipScore(float cosine) {
        return 100f * Math.max(cosine, 0f);
    }
}
