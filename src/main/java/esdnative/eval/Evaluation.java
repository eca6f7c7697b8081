package esdnative.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.backend.Backend;
import esdnative.util.ProgressBar;
import esdnative.util.UserError;
import esdnative.io.AtomicFile;
import esdnative.io.Json;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Vae;
import esdnative.model.clip.ClipModel;
import esdnative.model.clip.RgbImage;
import esdnative.pipeline.Png;
import esdnative.pipeline.TextToImage;
import esdnative.tensor.Tensor;
import esdnative.toy.ShapeJudge;
import esdnative.toy.ShapesDataset;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code esd-native eval}'s work: generate {@code samples} images per prompt with every model from the same seeds
 * (images already in the output folder are kept: a stopped run resumes), then measure every image from its saved
 * PNG — CLIP score against its prompt, the class it shows (CLIP zero-shot over the prompts' classes, or the toy
 * judge without CLIP), the safety checker's flag — and write the report, its JSON and a labelled grid.
 */
public final class Evaluation {
    /** Sampling settings, the same for every model; {@code concept} (or null) splits the report erased/others. */
    public record Settings(int samples, int steps, float guidance, String concept) {}

    /**
     * A model under evaluation: its short label (its column), where it is, and how the user named it (what the
     * report and the resume check record: the built-in toy model lives in a new temp folder each run).
     */
    public record Model(String label, Path path, String source) {}

    /** How each image is measured: CLIP (scores, zero-shot), or the toy judge; the safety checker, or none. */
    public record Judges(ClipScorer clip, ShapeJudge toyJudge, SafetyChecker safety) {}

    private Evaluation() {}

    /** Generates what is missing, measures every image and writes report.md, report.json and grid.png into out. */
    public static EvalReport run(Backend be, List<Model> models, EvalPrompts prompts, Settings s, Judges judges,
                                 Path out, PrintStream log) {
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new UserError("cannot create " + out + ": " + e.getMessage(), e);
        }
        recordSettings(out.resolve("eval-settings.json"), models, prompts, s);
        List<EvalImage> planned = plan(models, prompts, s);
        generate(be, models, prompts, s, planned, out, log);
        List<EvalImage> measured = measure(be, prompts, judges, planned, out, log);
        EvalReport report = new EvalReport(models, prompts, s, judges.clip() != null, judges.safety() != null, measured);
        report.write(out);
        ImageGrid.write(out.resolve("grid.png"), out, report);
        return report;
    }

    /** Every image's path and seed, models outermost. */
    static List<EvalImage> plan(List<Model> models, EvalPrompts prompts, Settings s) {
        List<EvalImage> images = new ArrayList<>();
        for (int m = 0; m < models.size(); m++) {
            for (int p = 0; p < prompts.prompts().size(); p++) {
                for (int k = 0; k < s.samples(); k++) {
                    long seed = prompts.prompts().get(p).seed() + k;
                    String path = String.format(Locale.ROOT, "images/%s/%04d-%d.png", models.get(m).label(), p, seed);
                    images.add(new EvalImage(path, m, p, seed, null, null, null));
                }
            }
        }
        return images;
    }

    /**
     * Writes the settings that decide the images; a folder holding images made otherwise (other steps, guidance,
     * prompts, or another model under the same label) is refused rather than mixed.
     */
    private static void recordSettings(Path file, List<Model> models, EvalPrompts prompts, Settings s) {
        ObjectNode now = Json.mapper().createObjectNode();
        now.put("steps", s.steps());
        now.put("guidance", s.guidance());
        ArrayNode promptList = now.putArray("prompts");
        for (EvalPrompt p : prompts.prompts()) promptList.addObject().put("prompt", p.prompt()).put("seed", p.seed());
        ObjectNode modelPaths = now.putObject("models");
        if (Files.isRegularFile(file)) {
            JsonNode before = Json.tree(file);
            JsonNode asRead = reread(now);   // numbers as a reader types them (7 an int, not a long)
            for (String key : List.of("steps", "guidance", "prompts")) {
                if (!before.path(key).equals(asRead.path(key))) {
                    throw new UserError(file.getParent() + " holds images made with other " + key
                            + " (see " + file.getFileName() + "); use another folder");
                }
            }
            before.path("models").properties().forEach(e -> modelPaths.set(e.getKey(), e.getValue()));
        }
        for (Model m : models) {
            String path = m.source();
            JsonNode old = modelPaths.get(m.label());
            if (old != null && !old.asText().equals(path)) {
                throw new UserError(file.getParent() + " holds images of another model labelled '" + m.label()
                        + "' (" + old.asText() + "); use another folder");
            }
            modelPaths.put(m.label(), path);
        }
        writeText(file, now.toPrettyString() + "\n");
    }

    private static JsonNode reread(JsonNode node) {
        try {
            return Json.mapper().readTree(node.toString());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void generate(Backend be, List<Model> models, EvalPrompts prompts, Settings s,
                                 List<EvalImage> planned, Path out, PrintStream log) {
        List<EvalImage> missing = planned.stream().filter(i -> !Files.isRegularFile(out.resolve(i.path()))).toList();
        if (missing.size() < planned.size()) {
            log.printf(Locale.ROOT, "eval: %d of %d images already in %s, kept%n", planned.size() - missing.size(),
                    planned.size(), out);
        }
        if (missing.isEmpty()) return;
        ProgressBar bar = new ProgressBar(log, missing.size());
        int done = 0;
        for (int m = 0; m < models.size(); m++) {
            int model = m;
            List<EvalImage> todo = missing.stream().filter(i -> i.model() == model).toList();
            if (todo.isEmpty()) continue;
            try (StableDiffusion sd = ModelLoader.load(be, models.get(m).path(), null, null)) {
                Vae vae = ModelLoader.loadVae(be, sd, null);
                int size = sd.defaultResolution();
                for (EvalImage image : todo) {
                    EvalPrompt p = prompts.prompts().get(image.prompt());
                    TextToImage.Result r = TextToImage.run(be, sd, vae, new TextToImage.Request(p.prompt(), "", s.steps(),
                            s.guidance(), 0f, image.seed(), size, size, null), null);
                    Path file = out.resolve(image.path());
                    try {
                        Files.createDirectories(file.getParent());
                    } catch (IOException e) {
                        throw new UserError("cannot create " + file.getParent() + ": " + e.getMessage(), e);
                    }
                    Png.write(file, r.image(), r.imageHeight(), r.imageWidth());
                    done++;
                    bar.update(done, done, models.get(m).label());
                }
            }
        }
    }

    /** Every image measured from its PNG, as a reader of the output folder would see it. */
    private static List<EvalImage> measure(Backend be, EvalPrompts prompts, Judges judges, List<EvalImage> planned,
                                           Path out, PrintStream log) {
        log.printf(Locale.ROOT, "eval: measuring %d images%n", planned.size());
        List<RgbImage> pixels = planned.stream().map(i -> RgbImage.read(out.resolve(i.path()))).toList();
        List<String> classes = prompts.classes();
        double[] scores = new double[planned.size()];
        String[] predicted = new String[planned.size()];
        if (judges.clip() != null) {
            ClipScorer clip = judges.clip();
            int d = clip.projectionDim();
            float[] images = clip.imageEmbeds(pixels);
            float[] texts = clip.textEmbeds(prompts.prompts().stream().map(EvalPrompt::prompt).toList());
            float[][] toPrompt = ClipModel.cosines(images, planned.size(), texts, prompts.prompts().size(), d);
            float[][] toClass = classes.isEmpty() ? null : ClipModel.cosines(images, planned.size(),
                    clip.textEmbeds(classes.stream().map(prompts::classText).toList()), classes.size(), d);
            for (int i = 0; i < planned.size(); i++) {
                scores[i] = ClipModel.clipScore(toPrompt[i][planned.get(i).prompt()]);
                if (toClass != null) predicted[i] = classes.get(argmax(toClass[i]));
            }
        } else if (judges.toyJudge() != null) {
            int[] shapes = toyJudge(be, judges.toyJudge(), pixels);
            for (int i = 0; i < planned.size(); i++) predicted[i] = ShapesDataset.CLASSES.get(shapes[i]);
        }
        List<EvalImage> measured = new ArrayList<>();
        for (int i = 0; i < planned.size(); i++) {
            EvalImage image = planned.get(i);
            boolean hasClass = prompts.prompts().get(image.prompt()).className() != null;
            Boolean nsfw = judges.safety() != null ? judges.safety().check(pixels.get(i)).nsfw() : null;
            measured.add(new EvalImage(image.path(), image.model(), image.prompt(), image.seed(),
                    judges.clip() != null ? scores[i] : null, hasClass ? predicted[i] : null, nsfw));
        }
        return measured;
    }

    /** The toy judge's class of each image, read back from 8 bits to [-1, 1] as the toy model's pixels. */
    private static int[] toyJudge(Backend be, ShapeJudge judge, List<RgbImage> images) {
        int s = judge.size(), plane = s * s;
        float[] x = new float[images.size() * 3 * plane];
        for (int n = 0; n < images.size(); n++) {
            RgbImage img = images.get(n);
            if (img.width() != s || img.height() != s) {
                throw new UserError("the toy judge sees " + s + "×" + s + " images, the model made " + img.width() + "×"
                        + img.height() + "; judge this model's images with CLIP");
            }
            for (int i = 0; i < plane; i++) {
                for (int c = 0; c < 3; c++) x[(n * 3 + c) * plane + i] = (img.rgb()[i * 3 + c] & 0xFF) / 255f * 2 - 1;
            }
        }
        Tensor batch = be.fromHost(x, images.size(), 3, s, s);
        return judge.classify(be, batch);
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    static void writeText(Path file, String text) {
        AtomicFile.write(file, ch -> ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8))));
    }
}
