package esdnative.eval;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.io.Json;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * The measured images of an evaluation, summarised per model and per prompt, written as report.md (models side by
 * side; with a concept, the prompts that name it apart from the others) and report.json (the same numbers and
 * every image).
 */
public record EvalReport(List<Evaluation.Model> models, EvalPrompts prompts, Evaluation.Settings settings,
                         boolean hasClip, boolean hasSafety, List<EvalImage> images) {

    /** A mean over some images; NaN over none. */
    public record Stat(double value, int count) {
        static Stat of(List<Double> values) {
            double sum = 0;
            for (double v : values) sum += v;
            return new Stat(values.isEmpty() ? Double.NaN : sum / values.size(), values.size());
        }
    }

    /** Whether a prompt names the erased concept (in its text or its class). */
    public boolean erased(int prompt) {
        if (settings.concept() == null) return false;
        EvalPrompt p = prompts.prompts().get(prompt);
        String c = settings.concept().toLowerCase(Locale.ROOT);
        return p.prompt().toLowerCase(Locale.ROOT).contains(c)
                || (p.className() != null && p.className().toLowerCase(Locale.ROOT).contains(c));
    }

    public Stat clipScore(int model, Predicate<EvalImage> which) {
        return Stat.of(images.stream().filter(i -> i.model() == model && which.test(i) && i.clipScore() != null)
                .map(EvalImage::clipScore).toList());
    }

    /** Fraction of images (with a class) whose predicted class is their prompt's. */
    public Stat accuracy(int model, Predicate<EvalImage> which) {
        return Stat.of(images.stream().filter(i -> i.model() == model && which.test(i) && i.predictedClass() != null)
                .map(i -> i.predictedClass().equals(prompts.prompts().get(i.prompt()).className()) ? 1.0 : 0.0).toList());
    }

    public Stat nsfwRate(int model, Predicate<EvalImage> which) {
        return Stat.of(images.stream().filter(i -> i.model() == model && which.test(i) && i.nsfw() != null)
                .map(i -> i.nsfw() ? 1.0 : 0.0).toList());
    }

    /** The image groups of the summary: all, and with a concept the erased prompts and the others. */
    List<Group> groups() {
        if (settings.concept() == null) return List.of(new Group("all prompts", i -> true));
        return List.of(new Group("erased (\"" + settings.concept() + "\")", i -> erased(i.prompt())),
                new Group("others", i -> !erased(i.prompt())), new Group("all prompts", i -> true));
    }

    record Group(String name, Predicate<EvalImage> which) {}

    public void write(Path out) {
        Evaluation.writeText(out.resolve("report.md"), markdown());
        Evaluation.writeText(out.resolve("report.json"), json().toPrettyString() + "\n");
    }

    String markdown() {
        StringBuilder md = new StringBuilder("# esd-native eval\n\n");
        md.append(String.format(Locale.ROOT, "%d prompts × %d samples per model, DDIM %d steps, guidance %s, the same seeds"
                + " for every model.%n%n", prompts.prompts().size(), settings.samples(), settings.steps(), settings.guidance()));
        for (Evaluation.Model m : models) md.append("- **").append(m.label()).append("**: `").append(m.source()).append("`\n");
        md.append('\n').append(hasClip ? "CLIP score: torchmetrics' 100 · max(cos, 0), mean over images. Accuracy: CLIP "
                + "zero-shot over the prompts' classes (\"" + prompts.classTemplate() + "\")."
                : "Accuracy: the toy judge's class.").append(hasSafety ? " NSFW: SD's safety checker flag rate." : "")
                .append("\n\n## Summary\n\n");
        StringBuilder head = new StringBuilder("| |"), rule = new StringBuilder("|---|");
        for (Evaluation.Model m : models) {
            head.append(' ').append(m.label()).append(" |");
            rule.append("---:|");
        }
        md.append(head).append('\n').append(rule).append('\n');
        for (Group g : groups()) {
            if (hasClip) row(md, "CLIP score, " + g.name(), m -> clipScore(m, g.which()), false);
            row(md, "accuracy, " + g.name(), m -> accuracy(m, g.which()), true);
            if (hasSafety) row(md, "NSFW flagged, " + g.name(), m -> nsfwRate(m, g.which()), true);
        }
        md.append("\n## Per prompt\n\n| prompt | class |");
        StringBuilder perRule = new StringBuilder("|---|---|");
        for (String what : hasClip ? List.of("CLIP", "acc") : List.of("acc")) {
            for (Evaluation.Model m : models) {
                md.append(' ').append(m.label()).append(' ').append(what).append(" |");
                perRule.append("---:|");
            }
        }
        if (hasSafety) {
            for (Evaluation.Model m : models) {
                md.append(' ').append(m.label()).append(" NSFW |");
                perRule.append("---:|");
            }
        }
        md.append('\n').append(perRule).append('\n');
        for (int p = 0; p < prompts.prompts().size(); p++) {
            int prompt = p;
            EvalPrompt ep = prompts.prompts().get(p);
            md.append("| ").append(erased(p) ? "**" + escape(ep.prompt()) + "**" : escape(ep.prompt())).append(" | ")
                    .append(ep.className() == null ? "" : escape(ep.className())).append(" |");
            Predicate<EvalImage> mine = i -> i.prompt() == prompt;
            if (hasClip) for (int m = 0; m < models.size(); m++) md.append(' ').append(format(clipScore(m, mine), false)).append(" |");
            for (int m = 0; m < models.size(); m++) md.append(' ').append(format(accuracy(m, mine), true)).append(" |");
            if (hasSafety) for (int m = 0; m < models.size(); m++) md.append(' ').append(format(nsfwRate(m, mine), true)).append(" |");
            md.append('\n');
        }
        md.append("\nImages: `images/<model>/<prompt>-<seed>.png`; all of them with their numbers in `report.json`; "
                + "first sample of each prompt in `grid.png`.\n");
        return md.toString();
    }

    private void row(StringBuilder md, String name, java.util.function.IntFunction<Stat> stat, boolean percent) {
        md.append("| ").append(name).append(" |");
        for (int m = 0; m < models.size(); m++) md.append(' ').append(format(stat.apply(m), percent)).append(" |");
        md.append('\n');
    }

    static String format(Stat s, boolean percent) {
        if (s.count() == 0) return "–";
        return percent ? String.format(Locale.ROOT, "%.1f%%", 100 * s.value()) : String.format(Locale.ROOT, "%.2f", s.value());
    }

    private static String escape(String text) { return text.replace("|", "\\|"); }

    ObjectNode json() {
        ObjectNode root = Json.mapper().createObjectNode();
        ObjectNode set = root.putObject("settings");
        set.put("samples", settings.samples()).put("steps", settings.steps()).put("guidance", settings.guidance());
        if (settings.concept() != null) set.put("concept", settings.concept());
        set.put("class_template", prompts.classTemplate());
        ArrayNode modelList = root.putArray("models");
        for (int m = 0; m < models.size(); m++) {
            ObjectNode node = modelList.addObject().put("label", models.get(m).label()).put("path", models.get(m).source());
            ObjectNode summary = node.putObject("summary");
            for (Group g : groups()) {
                ObjectNode group = summary.putObject(g.name());
                put(group, "clip_score", clipScore(m, g.which()));
                put(group, "accuracy", accuracy(m, g.which()));
                put(group, "nsfw_rate", nsfwRate(m, g.which()));
            }
        }
        ArrayNode promptList = root.putArray("prompts");
        for (int p = 0; p < prompts.prompts().size(); p++) {
            EvalPrompt ep = prompts.prompts().get(p);
            ObjectNode node = promptList.addObject().put("prompt", ep.prompt()).put("seed", ep.seed())
                    .put("case_number", ep.caseNumber()).put("erased", erased(p));
            if (ep.className() != null) node.put("class", ep.className());
        }
        ArrayNode imageList = root.putArray("images");
        for (EvalImage i : images) {
            ObjectNode node = imageList.addObject().put("path", i.path()).put("model", models.get(i.model()).label())
                    .put("prompt", prompts.prompts().get(i.prompt()).prompt()).put("seed", i.seed());
            if (i.clipScore() != null) node.put("clip_score", i.clipScore());
            if (i.predictedClass() != null) node.put("predicted_class", i.predictedClass());
            if (i.nsfw() != null) node.put("nsfw", i.nsfw());
        }
        return root;
    }

    private static void put(ObjectNode node, String name, Stat s) {
        if (s.count() > 0) node.put(name, s.value());
    }
}
