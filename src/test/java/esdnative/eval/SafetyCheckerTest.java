package esdnative.eval;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.model.Weights;
import esdnative.model.clip.ClipModel;
import esdnative.model.clip.ClipVisionConfig;
import esdnative.model.clip.ClipVisionModel;
import esdnative.model.clip.RgbImage;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** StableDiffusionSafetyChecker.forward against diffusers 0.21.4 (tiny-safety-checker-golden). */
class SafetyCheckerTest {
    private static final String[] IMAGES = {"img0_rgb_32x32.png", "img1_rgb_48x40.png", "img2_rgba_40x40.png",
            "img3_rgb_24x36.png", "img4_gray_30x30.png", "img5_rgb_64x64.png", "img6_tiny_sd_a_pipeline_out_32x32.png",
            "img7_palette_36x28.png"};

    private static Path golden() { return Fixtures.path("tiny-safety-checker-golden"); }

    private static float[] flatten(float[][] rows) {
        float[] out = new float[rows.length * rows[0].length];
        for (int i = 0; i < rows.length; i++) System.arraycopy(rows[i], 0, out, i * rows[0].length, rows[0].length);
        return out;
    }

    @Test
    void embeddingsCosinesScoresAndEveryFlag() {
        try (Backend cpu = new CpuBackend()) {
            SafetyChecker checker = SafetyChecker.load(cpu, Fixtures.path("tiny-safety-checker"));
            float[] pixels = Npy.read(golden().resolve("sc_pixel_values.npy")).floats();
            float[] embeds = checker.imageEmbeds(pixels, 8);
            Goldens.assertClose(golden(), "sc_image_embeds", embeds);
            float[][][] cos = checker.cosines(embeds, 8);
            Goldens.assertClose(golden(), "sc_special_cos_dist", flatten(cos[0]));
            Goldens.assertClose(golden(), "sc_cos_dist", flatten(cos[1]));

            // from the PNGs themselves, one at a time, as eval calls it
            List<SafetyChecker.Verdict> verdicts = new ArrayList<>();
            for (String image : IMAGES) verdicts.add(checker.check(RgbImage.read(golden().resolve("images").resolve(image))));
            long[] expectedFlags = Npy.read(golden().resolve("sc_forward_has_nsfw_concept.npy")).longs();
            JsonNode results = Json.tree(golden().resolve("manifest.json")).path("scalars").path("forward_results");
            for (int i = 0; i < 8; i++) {
                SafetyChecker.Verdict v = verdicts.get(i);
                assertEquals(expectedFlags[i] != 0, v.nsfw(), IMAGES[i] + ": has_nsfw_concept");
                JsonNode r = results.get(i);
                for (int j = 0; j < v.specialScores().length; j++) {
                    assertEquals(r.path("special_scores").get(j).asDouble(), v.specialScores()[j], 0.0, IMAGES[i] + " special " + j);
                }
                for (int j = 0; j < v.conceptScores().length; j++) {
                    assertEquals(r.path("concept_scores").get(j).asDouble(), v.conceptScores()[j], 0.0, IMAGES[i] + " concept " + j);
                }
                List<Integer> bad = new ArrayList<>();
                r.path("bad_concepts").forEach(b -> bad.add(b.asInt()));
                assertEquals(bad, v.badConcepts(), IMAGES[i] + ": bad concepts");
            }
        }
    }

    /** The real checker's architecture (ViT-L/14 vision, 1024 → 768, 17 + 3 concepts and thresholds) from shapes. */
    @Test
    void realCheckerParameterCount() {
        ClipModel.Config clip = ClipModel.Config.read(Fixtures.path("tiny-clip-golden/clip-vit-large-patch14.config.json"));
        ClipVisionConfig vision = clip.vision();
        long count = Weights.elementCount(ClipVisionModel.parameterShapes(vision))
                + Weights.elementCount(SafetyChecker.headShapes(vision.hiddenSize(), clip.projectionDim(), 17, 3));
        assertEquals(Npy.read(golden().resolve("count_safety_checker_full.npy")).longs()[0], count);
    }
}
