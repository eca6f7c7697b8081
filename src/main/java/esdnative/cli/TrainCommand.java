package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.checkpoint.Layout;
import esdnative.checkpoint.ModelWeights;
import esdnative.esd.Checkpoint;
import esdnative.esd.ConceptPresets;
import esdnative.esd.EsdOutput;
import esdnative.esd.EsdRun;
import esdnative.esd.EsdTrainer;
import esdnative.esd.ReuseMismatch;
import esdnative.esd.Sampler;
import esdnative.esd.Schedule;
import esdnative.esd.SdxlEsdOutput;
import esdnative.esd.Target;
import esdnative.esd.Trace;
import esdnative.esd.TrainMethod;
import esdnative.esd.TrainedNames;
import esdnative.esd.TrajectoryPool;
import esdnative.lora.LoraSettings;
import esdnative.io.AtomicFile;
import esdnative.io.InputSnapshot;
import esdnative.io.OutputLock;
import esdnative.model.ModelLoader;
import esdnative.model.SizeLimit;
import esdnative.model.StableDiffusion;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.tensor.Tensor;
import esdnative.text.ClipTokenizer;
import esdnative.toy.ShapesDataset;
import esdnative.toy.ToyDemo;
import esdnative.util.PeakMemory;
import esdnative.options.BackendOptions;
import esdnative.options.Flags;
import esdnative.options.LoraOptions;
import esdnative.options.ModelOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code esd-native train}: erase a concept from a Stable Diffusion model with ESD (defaults: the paper's). */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Erase a concept from a Stable Diffusion UNet with ESD (Gandikota et al. 2023).",
                "Defaults are the paper code's: 1000 iterations, lr 1e-5, negative guidance 1, start guidance 3, 50 DDIM steps."})
public final class TrainCommand implements Callable<Integer> {
    /** without --model, train runs the toy demo */
    @Mixin
    ModelOptions models;

    @Option(names = "--concept", paramLabel = "TEXT", description = "The concept to erase, e.g. \"Van Gogh\".")
    String concept;

    @Option(names = "--concepts", paramLabel = "\"A, B, C\"", description = "Several concepts; one is drawn per iteration.")
    String concepts;

    @Option(names = "--preset", paramLabel = "NAME", description = "A concept list of the paper code: allartist, i2p.")
    String preset;

    @Option(names = "--method", defaultValue = "xattn", paramLabel = "M",
            description = "Which parameters to train: noxattn (esd-u, the paper's), xattn (esd-x), xattn-strict, selfattn, full, notime, xlayer, selflayer; "
                    + "esd-u-2025 and esd-all-2025: the sets the authors' 2025 esd_sd.py calls esd-u and esd-all (its esd-u adds conv_out and the time embedding to the paper's, leaves the norms). Default: ${DEFAULT-VALUE}.")
    String method;

    @Option(names = "--iterations", defaultValue = "1000", description = "Default: ${DEFAULT-VALUE}.")
    int iterations;

    @Option(names = "--lr", defaultValue = "1e-5", description = "Adam learning rate. Default: ${DEFAULT-VALUE}.")
    float lr;

    @Option(names = "--negative-guidance", defaultValue = "1.0", description = "η in the target. Default: ${DEFAULT-VALUE}.")
    float negativeGuidance;

    @Option(names = "--target", defaultValue = "paper", paramLabel = "T",
            description = "What en is trained towards: paper (e0 − η (ep − e0)) or esd-2025 (ep − η (ep − e0), the authors' 2025 esd_sd.py / esd_sdxl.py). Default: ${DEFAULT-VALUE}.")
    String target;

    @Option(names = "--start-guidance", defaultValue = "3.0", description = "Guidance scale when sampling z. Default: ${DEFAULT-VALUE}.")
    float startGuidance;

    @Option(names = "--ddim-steps", defaultValue = "50", description = "Default: ${DEFAULT-VALUE}.")
    int ddimSteps;

    @Option(names = "--schedule", description = "paper (the paper code's noise levels, quirk included) or aligned. Default: paper (aligned with --fast).")
    String schedule;

    @Option(names = "--sampler", description = "Which model samples z: trainable (the paper code's) or frozen (the 2025 code's). Default: trainable (frozen with --fast).")
    String sampler;

    @Option(names = "--fast", description = "About a tenth of the compute: --sampler frozen --schedule aligned, and each frozen trajectory's points "
            + "(z, t, e0, ep) reused for --reuse iterations in a seeded order.")
    boolean fast;

    @Option(names = "--reuse", paramLabel = "K", description = "With --fast: how many points of one trajectory are trained on. "
            + "Default: all (--ddim-steps), or fewer so that the run draws at least 15 trajectories.")
    Integer reuse;

    @Option(names = "--resolution", paramLabel = "PX", description = "Image size in pixels. Default: the model's (512 for SD1.x).")
    Integer resolution;

    @Option(names = "--seed", defaultValue = "0", description = "Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--output", paramLabel = "PATH", description = "Where to write the result. Default: the paper code's name scheme in the current folder.")
    Path output;

    @Option(names = "--format", paramLabel = "F", description = "diffusers, single-file, trained-only or lora. Default: the input's layout.")
    String format;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--overwrite", description = "Replace an existing output.")
    boolean overwrite;

    @Option(names = "--save-every", defaultValue = "0", paramLabel = "N", description = "Write a resumable checkpoint every N iterations (0: only on Ctrl-C).")
    int saveEvery;

    @Option(names = "--resume", paramLabel = "CHECKPOINT", description = "Continue from a checkpoint of the same run.")
    Path resume;

    @Mixin
    BackendOptions backend;

    @Option(names = "--trace-dir", paramLabel = "DIR", description = "Write each iteration's concept, t_enc, t_ddpm, start noise and loss here.")
    Path traceDir;

    @Option(names = "--replay-dir", paramLabel = "DIR", description = "Take each iteration's concept, t_enc, t_ddpm and start noise from a trace.")
    Path replayDir;

    @Option(names = "--dry-run", description = "Print how many parameters the method trains, then stop.")
    boolean dryRun;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintStream err = System.err;
        Path model = models.model(), tokenizer = models.tokenizer(), configDir = models.config();
        String predictionType = models.predictionType();
        boolean ema = models.ema();
        if (model == null) {
            // no model: the built-in toy demo (erase a shape from the shipped shapes model), see esdnative.toy.ToyDemo
            esdnative.toy.ToyCommand.runDemo(toySettings(), null, output);
            return 0;
        }
        checkNumbers();
        backend.check();
        if (saveEvery < 0) throw new UserError("--save-every: must be 0 (only on Ctrl-C) or positive, got " + saveEvery);
        TrainMethod trainMethod = Flags.about("--method", () -> TrainMethod.parse(method));
        Target targetChoice = Flags.about("--target", () -> Target.parse(target));
        boolean xl = Files.exists(model) && StableDiffusionXL.isSdxl(model);
        if (xl) refuseForSdxl(model);
        if (dryRun) {
            UNetConfig config = xl ? Flags.about("--config", () -> StableDiffusionXL.unetConfig(model, configDir))
                    : ModelLoader.unetConfig(models.requireModel(), configDir);
            var shapes = UNet2DConditionModel.parameterShapes(config);
            long total = shapes.values().stream().mapToLong(Tensor::sizeOf).sum();
            System.out.printf(Locale.ROOT, "%s trains %,d of %,d UNet parameters%n", trainMethod.id(),
                    Flags.about("--method " + trainMethod.id(), () -> TrainedNames.count(trainMethod, shapes)), total);
            return 0;
        }
        List<String> conceptList = concepts();
        LoraSettings lora = loraOptions.settings();
        Schedule sched = schedule != null ? Flags.about("--schedule", () -> Schedule.parse(schedule))
                : fast ? Schedule.ALIGNED : Schedule.PAPER;
        Sampler samplerChoice = sampler != null ? Flags.about("--sampler", () -> Sampler.parse(sampler))
                : fast ? Sampler.FROZEN : Sampler.TRAINABLE;
        if (fast && (sched != Schedule.ALIGNED || samplerChoice != Sampler.FROZEN)) {
            throw new UserError("--fast samples with the frozen model on the aligned schedule: drop --schedule/--sampler, or --fast");
        }
        if (reuse != null && !fast) throw new UserError("--reuse: only with --fast");
        if (traceDir != null && replayDir != null && traceDir.toAbsolutePath().equals(replayDir.toAbsolutePath())) {
            throw new UserError("--trace-dir and --replay-dir must differ");
        }
        if (replayDir != null && !Files.isDirectory(replayDir)) throw new UserError("--replay-dir: " + replayDir + " is not a folder");

        models.requireModel();
        try (Backend be = backend.open(err::println)) {
            long loadStart = System.nanoTime();
            // SD 1.x / 2.x or SDXL: one of the two is loaded
            StableDiffusion sd = xl ? null : ModelLoader.load(be, model, tokenizer, configDir,
                    ema ? ModelWeights.Ema.REQUIRE : ModelWeights.Ema.OFF, predictionType);
            if (!xl) ModelLoader.hintConfig(err, sd, configDir, "--config DIR");
            StableDiffusionXL sdxl = xl ? StableDiffusionXL.load(be, model, configDir) : null;
            UNetConfig unetConfig = xl ? sdxl.unet() : sd.unet();
            int vaeFactor = xl ? sdxl.vaeScaleFactor() : sd.vaeScaleFactor();
            Layout inputLayout = xl ? (Files.isDirectory(model) ? Layout.DIFFUSERS : Layout.SINGLE_FILE) : sd.layout();
            Layout outFormat = format != null ? Flags.about("--format", () -> Layout.outputFormat(format)) : inputLayout;
            EsdTrainer.Settings chosen = EsdTrainer.Settings.paper(conceptList).withMethod(trainMethod).withIterations(iterations)
                    .withLr(lr).withNegativeGuidance(negativeGuidance).withStartGuidance(startGuidance).withDdimSteps(ddimSteps)
                    .withSchedule(sched).withResolution(resolution != null ? resolution : unetConfig.sampleSize() * vaeFactor)
                    .withSeed(seed).withSampler(samplerChoice).withTarget(targetChoice);
            EsdTrainer.Settings settings = fast ? chosen.fast(reuse != null ? reuse : TrajectoryPool.defaultReuse(iterations, ddimSteps)) : chosen;
            Flags.about("--resolution", () -> EsdTrainer.latentShape(unetConfig, vaeFactor, settings.resolution())); // before anything runs
            var unetNames = (xl ? sdxl.unetWeights() : sd.unetWeights()).asMap().keySet();
            Flags.about("--method " + trainMethod.id(), () -> TrainedNames.selector(trainMethod, unetNames));
            // sampling runs the UNet on 2 samples (guidance); the loss on 1, keeping attention scores for the backward pass
            int side = settings.resolution();
            SizeLimit.check("--resolution", unetConfig, null, vaeFactor, side, side, 2, false);
            SizeLimit.check("--resolution", unetConfig, null, vaeFactor, side, side, 1, true);
            Path out = output != null ? output : Path.of(defaultName(settings, outFormat));
            Flags.about("--output", () -> EsdOutput.checkWritable(out, outFormat, overwrite), Flags.OVERWRITE);
            Path checkpoint = sibling(out, ".checkpoint.safetensors");
            Path log = sibling(out, ".log.jsonl");
            for (Path p : List.of(checkpoint, log)) AtomicFile.checkNameLength(AtomicFile.partialOf(p), "--output");
            // a second run onto the same output refuses here, before any work; the SD model's files close with the run
            try (OutputLock lock = OutputLock.acquire(out, "--output"); sd) {
                InputSnapshot input = InputSnapshot.of(model);
                if (traceDir != null) createFolder(traceDir, "--trace-dir");
                err.printf(Locale.ROOT, "loaded %s (%s) on %s in %.1f s%n", model,
                        (xl ? "sdxl, " : "") + inputLayout.name().toLowerCase(Locale.ROOT),
                        be.name(), (System.nanoTime() - loadStart) / 1e9);
                warnTruncated(conceptList, xl ? sdxl.text().tokenizer() : sd.tokenizer(), err);

                EsdTrainer trainer = xl ? new EsdTrainer(be, sdxl, settings) : new EsdTrainer(be, sd, settings);
                if (!xl) sd.textEncoder().weights().release(be); // the trainer has encoded every prompt: off the device
                err.printf(Locale.ROOT, "%s: training %,d parameters; concepts: %s%n", trainMethod.id(),
                        trainer.subset().parameterCount(), String.join(", ", conceptList));
                Flags.Hint reuseFlags = new Flags.Hint(ReuseMismatch.class, fast ? "drop --fast/--reuse" : "pass --fast (and the --reuse it had)");
                if (resume != null) err.println("resumed at iteration " + Flags.about("--resume", () -> Checkpoint.restore(resume, trainer),
                        reuseFlags, new Flags.Hint(Checkpoint.BeyondPlan.class, "pass that as --iterations")));
                // the trace's first record, read before anything runs: a trace of another mode (--fast) is refused here
                if (replayDir != null && trainer.completed() < settings.iterations()) Flags.about("--replay-dir", () -> Trace.read(replayDir, trainer.completed() + 1, trainer), reuseFlags);
                try (EsdRun run = new EsdRun(trainer).checkpointTo(checkpoint, saveEvery).logTo(log).traceTo(traceDir)
                        .replayFrom(replayDir).reportTo(EsdRun.Progress.bar(err))) {
                    if (!run.train()) {
                        err.println("\ninterrupted after iteration " + trainer.completed() + "; resume with --resume " + checkpoint);
                        return 130;
                    }
                    // the finished training is saved before the output is written, and kept until it is complete
                    String still = "The finished training is in " + checkpoint + ": put the input back and write the output with --resume " + checkpoint;
                    if (!run.saveFinished(still)) {
                        err.println("\ninterrupted after the last iteration; " + still);
                        return 130;
                    }
                    input.verifyUnchanged("--model", still);
                    if (xl) {
                        SdxlEsdOutput output = new SdxlEsdOutput(be, sdxl, trainer.subset(), metadata(settings)).configsFrom(configDir);
                        if (outFormat == Layout.LORA) output.writeLora(out, lora).forEach(err::println);
                        else Flags.about("--output", () -> output.write(out, outFormat, overwrite), Flags.OVERWRITE);
                    } else {
                        EsdOutput output = new EsdOutput(be, sd, trainer.subset(), metadata(settings)).pipelineFilesFrom(configDir, tokenizer);
                        if (outFormat == Layout.LORA) output.writeLora(out, lora).forEach(err::println);
                        else Flags.about("--output", () -> output.write(out, outFormat, overwrite), Flags.OVERWRITE);
                    }
                    run.outputWritten();
                }
                err.printf(Locale.ROOT, "wrote %s (%s); log %s; peak memory %s%n", out, outFormat.formatId(), log, PeakMemory.describe());
                return 0;
            }
        }
    }

    /**
     * Options of SD 1.x / 2.x models that an SDXL model does not take, refused rather than ignored; an output format
     * the SDXL writer does not give (before the model is loaded).
     */
    private void refuseForSdxl(Path model) {
        Layout outFormat = format != null ? Flags.about("--format", () -> Layout.outputFormat(format))
                : Files.isDirectory(model) ? Layout.DIFFUSERS : Layout.SINGLE_FILE;
        Flags.about("--format", () -> SdxlEsdOutput.checkSupported(model, outFormat));
        models.requireConfigForSdxlSingleFile();
        if (models.ema()) throw new UserError("--ema: not for SDXL models");
        if (models.predictionType() != null) throw new UserError("--prediction-type: not for SDXL models (epsilon)");
        if (models.tokenizer() != null) {
            throw new UserError("--tokenizer: an SDXL model reads its two tokenizers from its folder (or --config's)");
        }
    }

    /**
     * Numbers a run cannot use, refused by their flags before anything runs (the trainer refuses them too, in its own
     * words); NaN or infinite ones would train a NaN model.
     */
    private void checkNumbers() {
        if (iterations < 1) throw new UserError("--iterations: must be at least 1, got " + iterations);
        if (!(lr > 0) || !Float.isFinite(lr)) throw new UserError("--lr: must be a finite positive number, got " + lr);
        if (ddimSteps < 1) throw new UserError("--ddim-steps: must be at least 1, got " + ddimSteps);
        if (reuse != null && (reuse < 1 || reuse > ddimSteps)) {
            throw new UserError("--reuse: a trajectory has " + ddimSteps + " points (--ddim-steps), got " + reuse);
        }
        if (!Float.isFinite(negativeGuidance)) throw new UserError("--negative-guidance: must be finite, got " + negativeGuidance);
        if (!Float.isFinite(startGuidance)) throw new UserError("--start-guidance: must be finite, got " + startGuidance);
    }

    /** The text encoder sees at most maxLength − 2 tokens of a prompt: a longer concept is cut, say so. */
    private static void warnTruncated(List<String> concepts, ClipTokenizer tokenizer, PrintStream err) {
        for (String c : concepts) {
            int tokens = tokenizer.encode(c).length;
            if (tokens > tokenizer.maxLength() - 2) {
                err.printf(Locale.ROOT, "warning: the concept \"%s\" is %d tokens; the text encoder sees only the first %d%n",
                        c.length() > 40 ? c.substring(0, 40) + "…" : c, tokens, tokenizer.maxLength() - 2);
            }
        }
    }

    /**
     * Without --model, train runs the toy demo: the options it shares take effect, the others (which only a real
     * model's run has) are refused rather than ignored.
     */
    private ToyDemo.Settings toySettings() {
        CommandLine.ParseResult given = spec.commandLine().getParseResult();
        List<String> unsupported = new ArrayList<>();
        for (String name : List.of("--concepts", "--preset", "--schedule", "--resolution", "--format", "--overwrite",
                "--save-every", "--resume", "--backend", "--precision", "--math", "--trace-dir", "--replay-dir", "--tokenizer", "--config", "--prediction-type", "--ema", "--dry-run", "--target")) {
            if (given.hasMatchedOption(name)) unsupported.add(name);
        }
        if (!unsupported.isEmpty()) {
            throw new UserError(String.join(", ", unsupported) + ": without --model, train runs the toy demo, which does "
                    + "not take " + (unsupported.size() == 1 ? "it" : "them") + "; pass --model to train a Stable Diffusion model");
        }
        String shape = concept != null ? concept.trim() : "circle";
        if (!ShapesDataset.CLASSES.contains(shape)) {
            throw new UserError("--concept: without --model, train runs the toy demo, whose concepts are the shapes "
                    + String.join(", ", ShapesDataset.CLASSES) + "; got '" + shape + "'");
        }
        checkNumbers();
        ToyDemo.Settings d = ToyDemo.Settings.defaults(shape);
        return new ToyDemo.Settings(shape,
                given.hasMatchedOption("--iterations") ? iterations : d.iterations(),
                given.hasMatchedOption("--lr") ? lr : d.lr(),
                given.hasMatchedOption("--negative-guidance") ? negativeGuidance : d.negativeGuidance(),
                given.hasMatchedOption("--start-guidance") ? startGuidance : d.startGuidance(),
                given.hasMatchedOption("--ddim-steps") ? ddimSteps : d.ddimSteps(),
                given.hasMatchedOption("--method") ? Flags.about("--method", () -> TrainMethod.parse(method)) : d.method(),
                d.eval(),
                given.hasMatchedOption("--seed") ? seed : d.seed());
    }

    private List<String> concepts() {
        int given = (concept != null ? 1 : 0) + (concepts != null ? 1 : 0) + (preset != null ? 1 : 0);
        if (given != 1) throw new UserError("give exactly one of --concept, --concepts or --preset");
        if (concept != null) {
            if (concept.isBlank()) throw new UserError("--concept: empty concept");
            return List.of(concept.trim());
        }
        return concepts != null ? Flags.about("--concepts", () -> ConceptPresets.split(concepts))
                : Flags.about("--preset", () -> ConceptPresets.preset(preset));
    }

    /** characters of the concept kept in a default output name: the name must stay a valid file name */
    private static final int NAME_WORD_MAX = 64;

    /**
     * The paper code's file name scheme, e.g. compvis-word_VanGogh-method_xattn-sg_3.0-ng_1.0-iter_1000-lr_1e-05; the
     * concept's characters that a file name cannot hold (a slash, control characters) become '_', and a long concept
     * is cut.
     */
    static String defaultName(EsdTrainer.Settings s, Layout f) {
        String word = s.concepts().size() == 1 ? s.concepts().getFirst().replace(" ", "") : "multi" + s.concepts().size();
        word = word.replaceAll("[/\\\\\\p{Cntrl}]", "_");
        if (word.codePointCount(0, word.length()) > NAME_WORD_MAX) word = word.substring(0, word.offsetByCodePoints(0, NAME_WORD_MAX));
        String prefix = f == Layout.DIFFUSERS ? "diffusers" : f == Layout.LORA ? "lora" : "compvis";
        String name = String.format(Locale.ROOT, "%s-word_%s-method_%s-sg_%s-ng_%s-iter_%d-lr_%s", prefix, word,
                s.method().id(), s.startGuidance(), s.negativeGuidance(), s.iterations(), pythonFloat(s.lr()));
        return f == Layout.DIFFUSERS ? name : name + ".safetensors";
    }

    /** Python's repr of a float, as the paper code's names show it (1e-05, 0.0001). */
    private static String pythonFloat(float v) {
        double d = Double.parseDouble(Float.toString(v));
        if (d != 0 && Math.abs(d) < 1e-4) {
            String[] parts = String.format(Locale.ROOT, "%e", d).split("e");
            String mantissa = parts[0].replaceAll("0+$", "").replaceAll("\\.$", "");
            int exp = Integer.parseInt(parts[1]);
            return mantissa + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
        }
        return Double.toString(d);
    }

    private Map<String, String> metadata(EsdTrainer.Settings s) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "pt");
        m.put("esd.method", s.method().id());
        m.put("esd.concepts", String.join(", ", s.concepts()));
        m.put("esd.iterations", Integer.toString(s.iterations()));
        m.put("esd.lr", Float.toString(s.lr()));
        m.put("esd.negative_guidance", Float.toString(s.negativeGuidance()));
        m.put("esd.start_guidance", Float.toString(s.startGuidance()));
        m.put("esd.ddim_steps", Integer.toString(s.ddimSteps()));
        m.put("esd.schedule", s.schedule().id());
        m.put("esd.sampler", s.sampler().id());
        m.put("esd.target", s.target().id());
        if (s.reuse() > 0) m.put("esd.reuse", Integer.toString(s.reuse()));
        m.put("esd.resolution", Integer.toString(s.resolution()));
        m.put("esd.seed", Long.toString(s.seed()));
        m.put("esd.source", models.model().getFileName().toString());
        return m;
    }

    private static Path sibling(Path out, String suffix) {
        return out.toAbsolutePath().resolveSibling(out.getFileName().toString().replaceAll("\\.safetensors$", "") + suffix);
    }

    private static void createFolder(Path dir, String flag) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UserError(flag + ": cannot create " + dir + ": " + e.getMessage(), e);
        }
    }
}
