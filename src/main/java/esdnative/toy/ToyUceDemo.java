package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.unet.Evaluations;
import esdnative.uce.ConceptEncoder;
import esdnative.uce.UceEdit;
import esdnative.uce.UceForm;
import esdnative.uce.UceSettings;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code toy demo --method uce}: the toy demo with UCE's closed-form edit (the authors' 2025 defaults: guide "",
 * no preserved concepts, λ 0.5) in place of ESD's training, judged on the same seeded images, so its table reads
 * beside ESD-x's. Writes the edited model (which {@code toy eval} reads) and grid.png into the output folder.
 */
public final class ToyUceDemo {
    private ToyUceDemo() {}

    /** Runs the demo for {@code s.concept()} (only the concept, the evaluation and the seed of {@code s} apply). */
    public static ToyDemo.Report run(Backend be, ToyDemo.Settings s, Path base, Path out, PrintStream log) {
        ToyDemo.requireShape(s.concept());
        long started = System.nanoTime();
        try (ToyAssets assets = ToyAssets.extract();
             StableDiffusion model = ModelLoader.load(be, base != null ? base : assets.model(), null, null)) {
            ShapeJudge judge = ShapeJudge.load(be, assets.judge());
            log.printf(Locale.ROOT, "toy demo: erasing \"%s\" from %s %dx%d shapes model with UCE (guide \"\", lamb %.1f)%n",
                    s.concept(), base != null ? base : "the built-in", model.unet().sampleSize(), model.unet().sampleSize(),
                    UceSettings.DEFAULT_LAMB);

            ToyEval.Result before = ToyEval.run(be, model, model.unetWeights(), judge, s.eval());
            UceSettings settings = new UceSettings(UceForm.F2025, List.of(s.concept()), List.of(""), List.of(), 1, null,
                    UceSettings.DEFAULT_LAMB);
            UceEdit.Result edit = UceEdit.apply(be, new ConceptEncoder(be, model.tokenizer(), model.textEncoder()),
                    model.unetWeights(), settings);
            double editSeconds = edit.textSeconds() + edit.solveSeconds();
            log.printf(Locale.ROOT, "UCE edited %d tensors in %.3f s%n", edit.edited().trained().asMap().size(), editSeconds);

            ToyEval.Result after = ToyEval.run(be, model, edit.edited().trainable(), judge, s.eval());
            ToyDemo.Report report = new ToyDemo.Report(s, before.accuracy(), after.accuracy(), editSeconds,
                    (System.nanoTime() - started) / 1e9, new Evaluations.Count(0, 0));   // no UNet pass in the edit
            log.print(ToyDemo.table(report, "UCE"));
            if (out != null) {
                ToyModel.save(be, out.resolve("model"), model.unet(), edit.edited().trainable(), model.textEncoder(),
                        Map.of("esd_native_toy", "erased " + s.concept(), "esd.method", "uce"));
                ToyGrid.write(out.resolve("grid.png"), before.images(), after.images(), model.unet().sampleSize(), 8);
                log.printf("wrote %s (model/, grid.png)%n", out);
            }
            return report;
        }
    }
}
