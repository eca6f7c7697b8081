package esdnative.model.clip;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Npy;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import esdnative.text.ClipTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tiny CLIPModel against transformers 4.33 (tiny-clip-golden), within each golden's suggested_atol. */
class ClipModelTest {
    private static final String[] IMAGES = {"img0_rgb_32x32.png", "img1_rgb_48x40.png", "img2_rgba_40x40.png",
            "img3_rgb_24x36.png"};

    private static Path golden() { return Fixtures.path("tiny-clip-golden"); }

    private static float[] read(String name) { return Npy.read(golden().resolve(name + ".npy")).floats(); }

    /** ViT-L/14's parameters from its config alone (no weights allocated): vision, text, projections, logit_scale. */
    @Test
    void vitL14ParameterCounts() {
        ClipModel.Config c = ClipModel.Config.read(golden().resolve("clip-vit-large-patch14.config.json"));
        long vision = Weights.elementCount(ClipVisionModel.parameterShapes(c.vision()));
        long text = Weights.elementCount(ClipTextModel.parameterShapes(c.text()));
        long heads = Weights.elementCount(ClipModel.headShapes(c));
        assertEquals(Npy.read(golden().resolve("count_clip_vit_l14_vision_model.npy")).longs()[0], vision);
        assertEquals(Npy.read(golden().resolve("count_clip_vit_l14_text_model.npy")).longs()[0], text);
        assertEquals(Npy.read(golden().resolve("count_clip_vit_l14_total.npy")).longs()[0], vision + text + heads);
        assertEquals(303_179_776L, vision);
        assertEquals(123_060_480L, text);
        assertEquals(427_616_513L, vision + text + heads);
    }

    /** The built-in ViT-L/14 shape (bench's) is the one openai/clip-vit-large-patch14's config.json spells out. */
    @Test
    void vitL14VisionConfigIsTheHubConfig() {
        assertEquals(ClipModel.Config.read(golden().resolve("clip-vit-large-patch14.config.json")).vision(),
                ClipVisionConfig.vitL14());
    }

    @Test
    void visionTowerAndImageEmbeddings() {
        try (Backend cpu = new CpuBackend()) {
            ClipModel clip = ClipModel.load(cpu, Fixtures.path("tiny-clip"));
            Tensor pixels = cpu.fromHost(read("clip_pixel_values"), 4, 3, 32, 32);
            Goldens.assertClose(golden(), "clip_vision_embeddings", cpu.toHost(clip.vision().embeddings(pixels)));
            ClipVisionModel.Output out = clip.vision().forward(pixels);
            Goldens.assertClose(golden(), "clip_vision_last_hidden_state", cpu.toHost(out.lastHiddenState()));
            Goldens.assertClose(golden(), "clip_vision_pooler_output", cpu.toHost(out.pooled()));
            float[] features = cpu.toHost(clip.imageFeatures(pixels));
            Goldens.assertClose(golden(), "clip_image_features", features);
            Goldens.assertClose(golden(), "clip_image_embeds", ClipModel.normalizeRows(features, 4, 20));
        }
    }

    /**
     * The golden ids are padded to the longest prompt with an attention mask; we run the causal mask only, so
     * last_hidden_state is compared where the mask is 1 (padding rows attend to themselves here). Pooled outputs
     * sit at the first EOS and see no padding either way.
     */
    @Test
    void textTowerAndEmbeddings() {
        long[] ids64 = Npy.read(golden().resolve("clip_in_input_ids.npy")).longs();
        long[] mask = Npy.read(golden().resolve("clip_in_attention_mask.npy")).longs();
        int[] ids = new int[ids64.length];
        for (int i = 0; i < ids.length; i++) ids[i] = (int) ids64[i];
        try (Backend cpu = new CpuBackend()) {
            ClipModel clip = ClipModel.load(cpu, Fixtures.path("tiny-clip"));
            float[] states = cpu.toHost(clip.text().forward(ids, 3));
            float[] expected = read("clip_text_last_hidden_state");
            double atol = Goldens.suggestedAtol(golden(), "clip_text_last_hidden_state"), worst = 0;
            for (int t = 0; t < mask.length; t++) {
                if (mask[t] == 0) continue;
                for (int c = 0; c < 12; c++) worst = Math.max(worst, Math.abs(states[t * 12 + c] - expected[t * 12 + c]));
            }
            assertTrue(worst <= atol, "clip_text_last_hidden_state (unmasked): " + worst + " > " + atol);
            float[] features = cpu.toHost(clip.textFeatures(ids, 3));
            Goldens.assertClose(golden(), "clip_text_features", features);
            Goldens.assertClose(golden(), "clip_text_embeds", ClipModel.normalizeRows(features, 3, 20));
            // the same prompts through our tokenizer, padded to 77: the README bounds the change by < 1e-6
            List<String> prompts = List.of("a photo of a cat", "a red and blue striped pattern", "");
            ClipTokenizer tokenizer = ClipTokenizer.load(Fixtures.path("tiny-clip"));
            Goldens.assertClose(golden(), "clip_text_features",
                    cpu.toHost(clip.textFeatures(tokenizer.encodeBatch(prompts), 3)));
        }
    }

    /** From the PNGs: preprocessing, both towers, logits, cosines and CLIP scores (torchmetrics' definitions). */
    @Test
    void scoresFromThePngs() {
        ClipImageProcessor processor = ClipImageProcessor.read(Fixtures.path("tiny-clip/preprocessor_config.json"));
        float[] pixels = new float[4 * 3 * 32 * 32];
        for (int k = 0; k < 4; k++) {
            float[] p = processor.pixelValues(RgbImage.read(golden().resolve("images").resolve(IMAGES[k])));
            System.arraycopy(p, 0, pixels, k * p.length, p.length);
        }
        List<String> prompts = List.of("a photo of a cat", "a red and blue striped pattern", "");
        ClipTokenizer tokenizer = ClipTokenizer.load(Fixtures.path("tiny-clip"));
        try (Backend cpu = new CpuBackend()) {
            ClipModel clip = ClipModel.load(cpu, Fixtures.path("tiny-clip"));
            float[] img = ClipModel.normalizeRows(cpu.toHost(clip.imageFeatures(cpu.fromHost(pixels, 4, 3, 32, 32))), 4, 20);
            float[] txt = ClipModel.normalizeRows(cpu.toHost(clip.textFeatures(tokenizer.encodeBatch(prompts), 3)), 3, 20);
            float[][] cos = ClipModel.cosines(img, 4, txt, 3, 20);
            float scale = clip.logitScaleExp();
            Goldens.assertClose(golden(), "clip_logit_scale_exp", new float[] {scale});
            float[] cosine = new float[12], score = new float[12], perImage = new float[12], perText = new float[12];
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 3; j++) {
                    cosine[i * 3 + j] = cos[i][j];
                    score[i * 3 + j] = ClipModel.clipScore(cos[i][j]);
                    perImage[i * 3 + j] = scale * cos[i][j];
                    perText[j * 4 + i] = scale * cos[i][j];
                }
            }
            Goldens.assertClose(golden(), "clip_cosine", cosine);
            Goldens.assertClose(golden(), "clip_score_matrix", score);
            Goldens.assertClose(golden(), "clip_logits_per_image", perImage);
            Goldens.assertClose(golden(), "clip_logits_per_text", perText);
            float[] paired = {100 * cos[0][0], 100 * cos[1][1], 100 * cos[2][2]};
            Goldens.assertClose(golden(), "clip_score_paired_raw", paired);
            Goldens.assertClose(golden(), "clip_score_torchmetrics",
                    new float[] {Math.max((paired[0] + paired[1] + paired[2]) / 3, 0f)});
        }
    }
}
