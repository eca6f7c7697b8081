package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.eval.ClipScorer;
import esdnative.eval.EvalPrompts;
import esdnative.eval.EvalReport;
import esdnative.eval.Evaluation;
import esdnative.eval.SafetyChecker;
import esdnative.options.BackendOptions;
import esdnative.options.Flags;
import esdnative.options.SamplingOptions;
import esdnative.toy.ShapeJudge;
import esdnative.toy.ToyAssets;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;

/** {@code esd-native eval}: see whether a concept is gone, side by side with the models it was erased from. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate images per prompt with each model from the same seeds, then report CLIP score, "
                + "zero-shot accuracy and the safety checker's flag rate side by side (report.md, report.json, grid.png).",
                "Without --clip, the toy model's judge classifies (for the built-in shapes world: --model toy --preset shapes)."})
public final class EvalCommand implements Callable<Integer> {
    @Option(names = {"--model", "-m"}, required = true, paramLabel = "PATH",
            description = "[LABEL=]PATH: a model to evaluate (repeat to compare, e.g. the original and the erased): "
                    + "diffusers folder, single file, or 'toy' for the built-in toy model. Default label: the file name.")
    List<Path> models;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--prompts", paramLabel = "FILE",
                description = "Prompts: a CSV in the paper's layout (case_number,prompt,evaluation_seed[,class]) or text, one prompt a line.")
        Path file;

        @Option(names = "--preset", paramLabel = "NAME", description = "Built-in prompts: imagenette, artists, shapes (the toy world).")
        String preset;
    }

    @Option(names = "--clip", paramLabel = "DIR",
            description = "A transformers CLIPModel folder (e.g. openai/clip-vit-large-patch14) for CLIP scores and zero-shot classes.")
    Path clip;

    @Option(names = "--safety-checker", paramLabel = "DIR",
            description = "An SD 1.x download holding safety_checker/ and feature_extractor/: report its flag rate.")
    Path safetyChecker;

    @Option(names = "--judge", paramLabel = "FILE", description = "Without --clip: the toy judge .safetensors (default: the built-in one).")
    Path judge;

    @Option(names = "--concept", paramLabel = "TEXT",
            description = "The erased concept: prompts that name it are reported apart from the others.")
    String concept;

    @Option(names = "--samples", defaultValue = "1", description = "Images per prompt and model, seeds seed..seed+N-1. Default: ${DEFAULT-VALUE}.")
    int samples;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of every prompt of a preset or text file (a CSV carries its own). Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder; run again to resume.")
    Path out;

    @Mixin
    BackendOptions backend;

    @Override
    public Integer call() {
        if (samples < 1) throw new UserError("--samples: must be at least 1, got " + samples);
        sampling.check();
        if (clip != null && !Files.isDirectory(clip)) throw new UserError("--clip: " + clip + " is not a folder");
        if (safetyChecker != null && !Files.isDirectory(safetyChecker)) {
            throw new UserError("--safety-checker: " + safetyChecker + " is not a folder");
        }
        if (judge != null && clip != null) throw new UserError("--judge: only without --clip (CLIP classifies otherwise)");
        backend.check();
        EvalPrompts prompts = source.file != null ? Flags.about("--prompts", () -> EvalPrompts.read(source.file, seed))
                : Flags.about("--preset", () -> EvalPrompts.preset(source.preset, seed));
        long start = System.nanoTime();
        try (ToyAssets toy = needsToyAssets() ? ToyAssets.extract() : null;
             Backend be = backend.open(System.err::println)) {
            List<Evaluation.Model> list = models(toy);
            if (clip == null) requireToyModels(list);
            ShapeJudge toyJudge = clip != null ? null : ShapeJudge.load(be, judge != null ? judge : toy.judge());
            Evaluation.Judges judges = new Evaluation.Judges(clip != null ? Flags.about("--clip", () -> ClipScorer.load(be, clip)) : null,
                    toyJudge, safetyChecker != null ? Flags.about("--safety-checker", () -> SafetyChecker.load(be, safetyChecker)) : null);
            EvalReport report = Evaluation.run(be, list, prompts, new Evaluation.Settings(samples, sampling.steps(), sampling.guidance(), concept),
                    judges, out, System.err);
            System.out.printf(Locale.ROOT, "eval: %d images of %d models in %.1f s; wrote %s, %s, %s%n",
                    report.images().size(), list.size(), (System.nanoTime() - start) / 1e9, out.resolve("report.md"),
                    out.resolve("report.json"), out.resolve("grid.png"));
            return 0;
        }
    }

    private boolean needsToyAssets() {
        return (clip == null && judge == null)
                || models.stream().anyMatch(p -> isBuiltInToy(p) || p.toString().endsWith("=toy"));
    }

    private static boolean isBuiltInToy(Path p) {
        return p.toString().equals("toy") && !Files.exists(p);
    }

    /** Each model with its label (LABEL=PATH, else its file name), made unique and safe as a folder name. */
    private List<Evaluation.Model> models(ToyAssets toy) {
        List<Evaluation.Model> list = new ArrayList<>();
        Set<String> used = new HashSet<>();
        for (Path given : models) {
            String spec = given.toString(), name = null;
            Path p = given;
            int eq = spec.indexOf('=');
            if (eq > 0 && !Files.exists(given)) {
                name = spec.substring(0, eq);
                p = Path.of(spec.substring(eq + 1));
            }
            Path path = isBuiltInToy(p) ? toy.model() : p;
            if (!Files.exists(path)) throw new UserError("--model: " + p + " does not exist");
            if (name == null) {
                Path file = p.toAbsolutePath().normalize().getFileName();
                name = (file == null ? "model" : file.toString()).replaceAll("\\.(safetensors|ckpt)$", "");
            }
            String base = name.replaceAll("[^A-Za-z0-9._-]", "_"), label = base;
            for (int n = 2; !used.add(label); n++) label = base + "-" + n;
            list.add(new Evaluation.Model(label, path, isBuiltInToy(p) ? "toy (built-in)"
                    : p.toAbsolutePath().normalize().toString()));
        }
        return list;
    }

    /** Without CLIP the toy judge classifies: only pixel-space models of its world make sense. */
    private static void requireToyModels(List<Evaluation.Model> list) {
        for (Evaluation.Model m : list) {
            if (!Files.isDirectory(m.path()) || Files.exists(m.path().resolve("vae"))) {
                throw new UserError("--clip: needed for " + m.path() + " (without --clip, eval classifies with the toy "
                        + "judge, which sees only the toy model's images)");
            }
        }
    }
}
