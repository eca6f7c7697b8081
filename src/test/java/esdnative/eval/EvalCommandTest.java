package esdnative.eval;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.io.Json;
import esdnative.model.clip.ClipImageProcessor;
import esdnative.model.clip.ClipModel;
import esdnative.model.clip.RgbImage;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import esdnative.text.ClipTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code esd-native eval} end to end on tiny-sd-a with tiny-clip and the tiny safety checker. */
class EvalCommandTest {
    private static final String CSV = """
            case_number,prompt,evaluation_seed,class
            0,a photo of a cat,7,cat
            1,a photo of a dog,7,dog
            2,"an image, plain",3,
            """;

    @Test
    void reportsScoresThatTheSavedPngsGiveAndTheSameImagesForTheSameSeeds(@TempDir Path tmp) throws IOException {
        Path prompts = tmp.resolve("prompts.csv"), out = tmp.resolve("out");
        Files.writeString(prompts, CSV);
        String model = Fixtures.path("tiny-sd-a").toString();
        String[] args = {"eval", "--model", model, "--model", model, "--prompts", prompts.toString(),
                "--clip", Fixtures.path("tiny-clip").toString(), "--safety-checker", Fixtures.path("tiny-safety-checker").toString(),
                "--samples", "2", "--steps", "3", "--concept", "cat", "--out", out.toString(), "--backend", "cpu"};
        assertEquals(0, Main.run(args));
        JsonNode images = Json.tree(out.resolve("report.json")).path("images");
        assertEquals(2 * 3 * 2, images.size());
        assertTrue(Files.isRegularFile(out.resolve("report.md")) && Files.isRegularFile(out.resolve("grid.png")));

        // every reported CLIP score recomputed from its PNG, one image at a time
        double atol = Goldens.suggestedAtol(Fixtures.path("tiny-clip-golden"), "clip_score_matrix");
        ClipImageProcessor processor = ClipImageProcessor.read(Fixtures.path("tiny-clip/preprocessor_config.json"));
        ClipTokenizer tokenizer = ClipTokenizer.load(Fixtures.path("tiny-clip"));
        int positive = 0;
        try (Backend cpu = new CpuBackend()) {
            ClipModel clip = ClipModel.load(cpu, Fixtures.path("tiny-clip"));
            for (JsonNode image : images) {
                float[] pixels = processor.pixelValues(RgbImage.read(out.resolve(image.path("path").asText())));
                float[] img = ClipModel.normalizeRows(cpu.toHost(clip.imageFeatures(cpu.fromHost(pixels, 1, 3, 32, 32))), 1, 20);
                float[] txt = ClipModel.normalizeRows(cpu.toHost(clip.textFeatures(
                        tokenizer.encodePadded(image.path("prompt").asText()), 1)), 1, 20);
                double expected = ClipModel.clipScore(ClipModel.cosines(img, 1, txt, 1, 20)[0][0]);
                assertEquals(expected, image.path("clip_score").asDouble(), atol, image.path("path").asText());
                if (expected > 0) positive++;
                assertTrue(image.path("nsfw").isBoolean(), "nsfw flag");
                boolean hasClass = !image.path("prompt").asText().startsWith("an image");
                assertEquals(hasClass, image.has("predicted_class"), "predicted_class where the prompt has a class");
            }
        }
        assertTrue(positive > 0, "some scores must be positive, or the comparison above proves little");

        // the same seed gives the same image in both model columns; the two samples (seeds) differ
        for (JsonNode image : images) {
            String path = image.path("path").asText();
            if (!path.startsWith("images/tiny-sd-a/")) continue;
            assertArrayEquals(Files.readAllBytes(out.resolve(path)),
                    Files.readAllBytes(out.resolve(path.replace("images/tiny-sd-a/", "images/tiny-sd-a-2/"))), path);
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(out.resolve("images/tiny-sd-a/0000-7.png")),
                Files.readAllBytes(out.resolve("images/tiny-sd-a/0000-8.png"))), "seeds 7 and 8 give different images");

        // run again: nothing regenerated, the same report
        Map<String, FileTime> times = new HashMap<>();
        for (JsonNode image : images) {
            String path = image.path("path").asText();
            times.put(path, Files.getLastModifiedTime(out.resolve(path)));
        }
        String report = Files.readString(out.resolve("report.json"));
        assertEquals(0, Main.run(args));
        for (var e : times.entrySet()) assertEquals(e.getValue(), Files.getLastModifiedTime(out.resolve(e.getKey())), e.getKey());
        assertEquals(report, Files.readString(out.resolve("report.json")));

        // other steps into the same folder: refused, not mixed
        String[] otherSteps = args.clone();
        otherSteps[List.of(args).indexOf("--steps") + 1] = "4";
        assertEquals(2, Main.run(otherSteps));
    }

    /** The toy model with its judge: the same report format, classes from the judge, no CLIP score. */
    @Test
    void toyModelWithTheToyJudge(@TempDir Path tmp) {
        Path out = tmp.resolve("toy");
        assertEquals(0, Main.run("eval", "--model", "toy", "--preset", "shapes", "--steps", "3", "--guidance", "5",
                "--out", out.toString(), "--backend", "cpu"));
        JsonNode report = Json.tree(out.resolve("report.json"));
        assertEquals(8, report.path("images").size());
        for (JsonNode image : report.path("images")) {
            assertNotNull(image.get("predicted_class"));
            assertFalse(image.has("clip_score"));
        }
        assertTrue(report.path("models").get(0).path("summary").path("all prompts").has("accuracy"));
    }

    @Test
    void badInputIsOneLine(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString();
        assertEquals(2, Main.run("eval", "--model", model, "--preset", "nope", "--clip", Fixtures.path("tiny-clip").toString(),
                "--out", tmp.resolve("a").toString()));
        // without CLIP, only the toy judge classifies: a model with a VAE is refused before any generation
        assertEquals(2, Main.run("eval", "--model", model, "--preset", "imagenette", "--out", tmp.resolve("b").toString()));
        assertFalse(Files.exists(tmp.resolve("b")));
    }
}
