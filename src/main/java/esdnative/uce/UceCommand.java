package esdnative.uce;

import esdnative.backend.cpu.CpuBackend;
import esdnative.checkpoint.Layout;
import esdnative.options.Flags;
import esdnative.options.LoraOptions;
import esdnative.options.ModelOptions;
import esdnative.util.UserError;
import esdnative.esd.EsdOutput;
import esdnative.io.InputSnapshot;
import esdnative.io.OutputLock;
import esdnative.lora.LoraSettings;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.checkpoint.ModelWeights;
import esdnative.util.PeakMemory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code esd-native uce}: erase concepts in closed form (UCE, Gandikota et al., WACV 2024) — no UNet pass, a CPU suffices. */
@Command(name = "uce", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Erase concepts with UCE (Unified Concept Editing): edit every cross-attention key and value "
                + "projection in closed form from text embeddings alone.",
                "Defaults are the authors' 2025 code's: erase scale 1, preserve scale 1, lamb 0.5, guide \"\"."})
public final class UceCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Option(names = "--erase", paramLabel = "TEXT", description = "A concept to erase, e.g. \"Van Gogh\" (repeat for several).")
    List<String> erase = new ArrayList<>();

    @Option(names = "--erase-file", paramLabel = "FILE", description = "Concepts to erase, one per line (blank lines skipped).")
    Path eraseFile;

    @Option(names = "--guide", paramLabel = "TEXT", description = "What every erased concept should become. Default: \"\" (nothing).")
    String guide;

    @Option(names = "--guide-per-concept", arity = "1..*", paramLabel = "TEXT", description = "One guide per erased concept, in order.")
    List<String> guidePerConcept;

    @Option(names = "--preserve", arity = "1..*", paramLabel = "TEXT", description = "Concepts to keep as they are.")
    List<String> preserve = new ArrayList<>();

    @Option(names = "--preserve-file", paramLabel = "FILE", description = "Concepts to keep, one per line.")
    Path preserveFile;

    @Option(names = "--erase-scale", defaultValue = "1", paramLabel = "S", description = "Default: ${DEFAULT-VALUE}.")
    double eraseScale;

    @Option(names = "--preserve-scale", paramLabel = "S", description = "Default: 1 (2025); max(0.1, 1 / #preserved) with --form 2023.")
    Double preserveScale;

    @Option(names = "--lamb", defaultValue = "0.5", paramLabel = "λ", description = "Weight of the original matrix. Default: ${DEFAULT-VALUE}.")
    double lamb;

    @Option(names = "--form", defaultValue = "2025", paramLabel = "F",
            description = "2025 (the authors' current code: last token only) or 2023 (the paper's: last token, EOS and padding rows; \"\" always preserved). Default: ${DEFAULT-VALUE}.")
    String form;

    @Option(names = "--output", required = true, paramLabel = "PATH", description = "Where to write the result.")
    Path output;

    @Option(names = "--format", paramLabel = "F", description = "diffusers, single-file, trained-only (the authors' file: the edited tensors, diffusers names) or lora (kohya keys). Default: the input's layout.")
    String format;

    @Mixin
    LoraOptions loraOptions;

    @Option(names = "--overwrite", description = "Replace an existing output.")
    boolean overwrite;

    @Override
    public Integer call() {
        PrintStream err = System.err;
        UceSettings settings = settings();
        LoraSettings lora = loraOptions.settings();
        Path model = models.requireModel(), tokenizer = models.tokenizer(), configDir = models.config();
        boolean ema = models.ema();
        // the input's layout by default: a folder is diffusers, a file a single file (as the loader reads them)
        Layout outFormat = format != null ? Flags.about("--format", () -> Layout.outputFormat(format))
                : Files.isDirectory(model) ? Layout.DIFFUSERS : Layout.SINGLE_FILE;
        Flags.about("--output", () -> EsdOutput.checkWritable(output, outFormat, overwrite), Flags.OVERWRITE);   // before loading a model of several GB
        long start = System.nanoTime();
        InputSnapshot input = InputSnapshot.of(model);
        try (OutputLock lock = OutputLock.acquire(output, "--output"); CpuBackend be = new CpuBackend();
             StableDiffusion sd = ModelLoader.load(be, model, tokenizer, configDir, ema ? ModelWeights.Ema.REQUIRE : ModelWeights.Ema.OFF,
                     models.predictionType())) {
            ModelLoader.hintConfig(err, sd, configDir, "--config DIR");
            err.printf(Locale.ROOT, "loaded %s (%s) in %.1f s%n", model, sd.layout().name().toLowerCase(Locale.ROOT),
                    (System.nanoTime() - start) / 1e9);

            UceEdit.Result r = UceEdit.apply(be, new ConceptEncoder(be, sd.tokenizer(), sd.textEncoder()), sd.unetWeights(), settings);
            err.printf(Locale.ROOT, "uce (%s form): %d erased, %d preserved concepts (%d + %d vectors); edited %d tensors "
                            + "(%,d parameters); text encoder %.2f s, closed form %.2f s%n", settings.form().id(),
                    settings.erase().size(), settings.preserved().size(), r.terms().erase().size(), r.terms().preserve().size(),
                    r.edited().trained().asMap().size(), r.edited().trained().elementCount(), r.textSeconds(), r.solveSeconds());

            input.verifyUnchanged("--model", "Run uce again on the input as it is now.");
            EsdOutput out = new EsdOutput(be, sd, r.edited(), metadata(settings)).pipelineFilesFrom(configDir, tokenizer);
            if (outFormat == Layout.LORA) out.writeLora(output, lora).forEach(err::println);
            else Flags.about("--output", () -> out.write(output, outFormat, overwrite), Flags.OVERWRITE);
            err.printf(Locale.ROOT, "wrote %s (%s) in %.1f s total; peak memory %s%n", output, outFormat.formatId(),
                    (System.nanoTime() - start) / 1e9, PeakMemory.describe());
            return 0;
        }
    }

    private UceSettings settings() {
        UceForm f = Flags.about("--form", () -> UceForm.parse(form));
        List<String> toErase = concepts(erase, eraseFile, "--erase-file");
        if (toErase.isEmpty()) throw new UserError("nothing to erase: give --erase TEXT or --erase-file FILE");
        for (String e : toErase) if (e.isBlank()) throw new UserError("--erase: empty concept");
        if (guide != null && guidePerConcept != null) throw new UserError("give --guide or --guide-per-concept, not both");
        List<String> guides = guidePerConcept != null ? guidePerConcept : List.of(guide != null ? guide.trim() : "");
        if (guidePerConcept != null && guides.size() != toErase.size()) {
            throw new UserError("--guide-per-concept: " + guides.size() + " guides for " + toErase.size() + " erased concepts");
        }
        // UceSettings refuses these too, in its own words; here they are refused by their flags' names
        if (!(lamb > 0)) throw new UserError("--lamb: must be positive (it keeps the edit solvable), got " + lamb);
        if (!(eraseScale >= 0)) throw new UserError("--erase-scale: must be 0 or more, got " + eraseScale);
        if (preserveScale != null && !(preserveScale >= 0)) {
            throw new UserError("--preserve-scale: must be 0 or more, got " + preserveScale);
        }
        return new UceSettings(f, toErase, guides.stream().map(String::trim).toList(),
                concepts(preserve, preserveFile, "--preserve-file"), eraseScale, preserveScale, lamb);
    }

    /** The concepts given on the command line, then those of the file (one per line, trimmed, blank lines skipped). */
    private static List<String> concepts(List<String> given, Path file, String flag) {
        List<String> all = new ArrayList<>(given.stream().map(String::trim).toList());
        if (file != null) {
            if (!Files.isRegularFile(file)) throw new UserError(flag + ": " + file + " is not a file");
            try {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    if (!line.isBlank()) all.add(line.trim());
                }
            } catch (IOException e) {
                throw new UserError(flag + ": cannot read " + file + ": " + e.getMessage(), e);
            }
        }
        return all;
    }

    private Map<String, String> metadata(UceSettings s) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "pt");
        m.put("uce.form", s.form().id());
        m.put("uce.erase", String.join("; ", s.erase()));
        m.put("uce.guides", String.join("; ", s.guides()));
        m.put("uce.preserve", String.join("; ", s.preserved()));
        m.put("uce.erase_scale", Double.toString(s.eraseScale()));
        m.put("uce.preserve_scale", Double.toString(s.effectivePreserveScale()));
        m.put("uce.lamb", Double.toString(s.lamb()));
        m.put("uce.source", models.model().getFileName().toString());
        return m;
    }
}
