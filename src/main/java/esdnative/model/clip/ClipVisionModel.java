package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.LayerNorm;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.SequencedMap;

/**
 * transformers 4.33's CLIPVisionTransformer forward: patch embedding (a stride-p convolution without bias), the
 * class token, position embeddings, pre-LayerNorm ("pre_layrnorm", sic), the shared {@link ClipEncoder} with full
 * self-attention, and post-LayerNorm of the class token → pooler_output.
 *
 * <p>Weight names are CLIPVisionModel's without the {@code vision_model.} prefix, e.g.
 * {@code embeddings.patch_embedding.weight}.
 */
public final class ClipVisionModel {
    private final Backend backend;
    private final ClipVisionConfig config;
    private final Weights weights;
    private final ClipEncoder encoder;

    /** last_hidden_state [n, tokens, hidden] (without post_layernorm) and pooler_output [n, hidden]. */
    public record Output(Tensor lastHiddenState, Tensor pooled) {}

    public ClipVisionModel(Backend backend, ClipVisionConfig config, Weights weights) {
        this.backend = backend;
        this.config = config;
        this.weights = weights;
        this.encoder = config.encoder();
    }

    private static LayerNorm preLayerNorm(ClipVisionConfig c) {
        return new LayerNorm("pre_layrnorm", c.hiddenSize(), c.layerNormEps());
    }

    private static LayerNorm postLayerNorm(ClipVisionConfig c) {
        return new LayerNorm("post_layernorm", c.hiddenSize(), c.layerNormEps());
    }

    /** Every parameter's name and shape, in checkpoint order, from the config alone. */
    public static SequencedMap<String, int[]> parameterShapes(ClipVisionConfig c) {
        int h = c.hiddenSize(), p = c.patchSize();
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("embeddings.class_embedding", new int[] {h});
        shapes.put("embeddings.patch_embedding.weight", new int[] {h, c.numChannels(), p, p});
        shapes.put("embeddings.position_embedding.weight", new int[] {c.tokens(), h});
        preLayerNorm(c).declare(shapes);
        c.encoder().declare(shapes);
        postLayerNorm(c).declare(shapes);
        return shapes;
    }

    public ClipVisionConfig config() { return config; }

    /** CLIPVisionEmbeddings for pixel values [n, channels, size, size] → [n, tokens, hidden]. */
    public Tensor embeddings(Tensor pixels) {
        int n = pixels.dim(0), h = config.hiddenSize(), g = config.gridSize(), patches = g * g, tokens = config.tokens();
        if (pixels.rank() != 4 || pixels.dim(1) != config.numChannels() || pixels.dim(2) != config.imageSize()
                || pixels.dim(3) != config.imageSize()) {
            throw new IllegalArgumentException("pixel values of shape " + java.util.Arrays.toString(pixels.shape())
                    + ", the vision tower needs [n, " + config.numChannels() + ", " + config.imageSize() + ", "
                    + config.imageSize() + "]");
        }
        Conv2dShape conv = new Conv2dShape(n, config.numChannels(), config.imageSize(), config.imageSize(), h,
                config.patchSize(), config.patchSize(), config.patchSize(), 0);
        Tensor grid = backend.zeros(n, h, patches);
        backend.conv2d(grid, pixels, weights.get("embeddings.patch_embedding.weight"), null, conv);
        Tensor patchRows = backend.zeros(n, patches, h);
        backend.transpose(patchRows, grid, n, h, patches);
        Tensor x = backend.zeros(n, tokens, h);
        Tensor positions = weights.get("embeddings.position_embedding.weight").view(0, tokens * h);
        for (int b = 0; b < n; b++) {
            long at = (long) b * tokens * h;
            backend.copy(x.view(at, h), weights.get("embeddings.class_embedding"));
            backend.copy(x.view(at + h, patches * h), patchRows.view((long) b * patches * h, patches * h));
            Tensor row = x.view(at, tokens * h);
            backend.add(row, row, positions, (long) tokens * h);
        }
        return x;
    }

    public Output forward(Tensor pixels) {
        int n = pixels.dim(0), h = config.hiddenSize(), tokens = config.tokens();
        Tensor x = preLayerNorm(config).forward(backend, weights, embeddings(pixels), n * tokens).out()
                .reshape(n, tokens, h);
        encoder.forward(backend, weights, x, 0, encoder.layerCount());
        Tensor classTokens = backend.zeros(n, h);
        for (int b = 0; b < n; b++) backend.copy(classTokens.view((long) b * h, h), x.view((long) b * tokens * h, h));
        Tensor pooled = postLayerNorm(config).forward(backend, weights, classTokens, n).out();
        return new Output(x, pooled);
    }
}
