package esdnative.eval;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.model.clip.ClipImageProcessor;
import esdnative.model.clip.ClipModel;
import esdnative.model.clip.RgbImage;
import esdnative.text.ClipTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * CLIP's view of generated images: the CLIP score of an image against its prompt (torchmetrics' CLIPScore,
 * 100 · max(cos, 0)) and zero-shot classification (the class text with the largest cosine).
 */
public final class ClipScorer {
    /** Images embedded per vision forward. */
    private static final int BATCH = 8;
    private final Backend backend;
    private final ClipModel clip;
    private final ClipImageProcessor processor;
    private final ClipTokenizer tokenizer;

    private ClipScorer(Backend backend, ClipModel clip, ClipImageProcessor processor, ClipTokenizer tokenizer) {
        this.backend = backend;
        this.clip = clip;
        this.processor = processor;
        this.tokenizer = tokenizer;
    }

    /** A transformers CLIPModel folder with preprocessor_config.json and the tokenizer files (vocab.json, merges.txt). */
    public static ClipScorer load(Backend backend, Path dir) {
        if (!Files.isDirectory(dir)) throw new UserError(dir + " is not a folder");
        Path preprocessor = dir.resolve("preprocessor_config.json");
        if (!Files.isRegularFile(preprocessor)) throw new UserError(dir + " has no preprocessor_config.json");
        return new ClipScorer(backend, ClipModel.load(backend, dir), ClipImageProcessor.read(preprocessor),
                ClipTokenizer.load(dir));
    }

    /** Unit image embeddings [n, projection] of the images, in batches. */
    public float[] imageEmbeds(List<RgbImage> images) {
        int d = clip.projectionDim(), s = processor.cropHeight(), w = processor.cropWidth(), n = images.size();
        float[] out = new float[n * d];
        for (int from = 0; from < n; from += BATCH) {
            int count = Math.min(BATCH, n - from);
            float[] pixels = new float[count * 3 * s * w];
            for (int i = 0; i < count; i++) {
                float[] p = processor.pixelValues(images.get(from + i));
                System.arraycopy(p, 0, pixels, i * p.length, p.length);
            }
            float[] features = backend.toHost(clip.imageFeatures(backend.fromHost(pixels, count, 3, s, w)));
            System.arraycopy(ClipModel.normalizeRows(features, count, d), 0, out, from * d, count * d);
        }
        return out;
    }

    /** Unit text embeddings [n, projection] (each text tokenized and padded to 77 tokens). */
    public float[] textEmbeds(List<String> texts) {
        float[] features = backend.toHost(clip.textFeatures(tokenizer.encodeBatch(texts), texts.size()));
        return ClipModel.normalizeRows(features, texts.size(), clip.projectionDim());
    }

    public int projectionDim() { return clip.projectionDim(); }
}
