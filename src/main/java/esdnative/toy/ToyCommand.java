package esdnative.toy;

import esdnative.backend.cpu.CpuBackend;
import esdnative.options.Flags;
import esdnative.util.UserError;
import esdnative.util.Rng;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code esd-native toy ...}: the built-in shapes world. */
@Command(name = "toy", description = "The built-in 'shapes' world: a tiny pixel-space model to see ESD work on a CPU.",
        subcommands = {ToyCommand.Pretrain.class, ToyCommand.Judge.class, ToyCommand.Demo.class, ToyCommand.Eval.class})
public final class ToyCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(name = "pretrain", mixinStandardHelpOptions = true,
            description = "Train the toy base model from scratch (DDPM loss) and write a diffusers-layout folder.")
    static final class Pretrain implements Runnable {
        @Option(names = "--out", required = true, description = "Output model folder (replaced atomically).")
        Path out;
        @Option(names = "--steps", defaultValue = "3000", description = "Training steps (default ${DEFAULT-VALUE}).")
        int steps;
        @Option(names = "--batch", defaultValue = "32", description = "Images per step (default ${DEFAULT-VALUE}).")
        int batch;
        @Option(names = "--lr", defaultValue = "1e-3", description = "Adam learning rate; lr/4 for the last quarter (default ${DEFAULT-VALUE}).")
        float lr;
        @Option(names = "--size", defaultValue = "16", description = "Image size in pixels (default ${DEFAULT-VALUE}).")
        int size;
        @Option(names = "--channels", defaultValue = "32", description = "UNet width: blocks of (C, 2C) channels, C a multiple of 8 (default ${DEFAULT-VALUE}).")
        int channels;
        @Option(names = "--ema", defaultValue = "0.999", description = "EMA decay of the saved weights (default ${DEFAULT-VALUE}).")
        float ema;
        @Option(names = "--seed", defaultValue = "0", description = "Random seed (default ${DEFAULT-VALUE}).")
        long seed;
        @Option(names = "--init", description = "Continue from this toy model folder instead of starting from scratch.")
        Path init;
        @Option(names = "--save-every", defaultValue = "500", description = "Also save every N steps; 0: only at the end (default ${DEFAULT-VALUE}).")
        int saveEvery;

        @Override
        public void run() {
            if (steps < 1) throw new UserError("--steps must be at least 1, got " + steps);
            if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
            if (size < 8 || size % 2 != 0) throw new UserError("--size must be an even number ≥ 8, got " + size);
            if (channels < 8 || channels % 8 != 0) throw new UserError("--channels must be a positive multiple of 8, got " + channels);
            if (!(lr > 0)) throw new UserError("--lr must be positive, got " + lr);
            if (!(ema >= 0 && ema < 1)) throw new UserError("--ema must be in [0, 1), got " + ema);
            try (CpuBackend be = new CpuBackend()) {
                ToyPretrain.run(be, new ToyPretrain.Settings(size, channels, steps, batch, lr, ema, 0.1f, seed, saveEvery), init, out,
                        System.err);
            }
        }
    }

    @Command(name = "judge", mixinStandardHelpOptions = true,
            description = "Train the shape classifier that judges generated images, and report its held-out accuracy.")
    static final class Judge implements Runnable {
        @Option(names = "--out", required = true, description = "Output .safetensors file.")
        Path out;
        @Option(names = "--steps", defaultValue = "400", description = "Training steps (default ${DEFAULT-VALUE}).")
        int steps;
        @Option(names = "--batch", defaultValue = "64", description = "Images per step (default ${DEFAULT-VALUE}).")
        int batch;
        @Option(names = "--lr", defaultValue = "2e-3", description = "Adam learning rate (default ${DEFAULT-VALUE}).")
        float lr;
        @Option(names = "--size", defaultValue = "16", description = "Image size in pixels (default ${DEFAULT-VALUE}).")
        int size;
        @Option(names = "--seed", defaultValue = "1", description = "Random seed (default ${DEFAULT-VALUE}).")
        long seed;

        @Override
        public void run() {
            if (steps < 1) throw new UserError("--steps must be at least 1, got " + steps);
            if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
            if (size < 8 || size % 4 != 0) throw new UserError("--size must be a multiple of 4, at least 8, got " + size);
            try (CpuBackend be = new CpuBackend()) {
                ShapeJudge judge = ShapeJudge.train(be, size, steps, batch, lr, seed, System.err);
                // held-out: images drawn from a seed the training never used
                double accuracy = judge.accuracy(be, new ShapesDataset(size), new Rng(seed + 1_000_003L), 1024);
                judge.save(be, out);
                System.out.printf("judge: %.1f%% on 1024 held-out real images; wrote %s%n", 100 * accuracy, out);
            }
        }
    }

    @Command(name = "demo", mixinStandardHelpOptions = true,
            description = "Erase a shape from the built-in model with ESD (default ESD-x) and print per-class accuracy before -> after "
                    + "(what 'esd-native train' does without --model).")
    static final class Demo implements Runnable {
        @Option(names = "--concept", defaultValue = "circle", description = "The shape to erase (default ${DEFAULT-VALUE}).")
        String concept;
        @Option(names = "--output", description = "Output folder (default: esd-toy-<concept>).")
        Path output;
        @Option(names = "--iterations", description = "ESD iterations (default: the demo's).")
        Integer iterations;
        @Option(names = "--lr", description = "Adam learning rate (default: the demo's).")
        Float lr;
        @Option(names = "--samples", description = "Judged samples per class (default: the demo's).")
        Integer samples;
        @Option(names = "--seed", defaultValue = "0", description = "Random seed of the ESD run (default ${DEFAULT-VALUE}).")
        long seed;
        @Option(names = "--base", description = "A toy model folder to erase from (default: the built-in one).")
        Path base;
        @Option(names = "--method", description = "ESD train method (default: xattn, i.e. ESD-x; noxattn is ESD-u), or uce (closed form, no training).")
        String method;
        @Option(names = "--fast", description = "Train as 'train --fast' does: frozen sampler, aligned schedule, reused trajectories.")
        boolean fast;

        @Override
        public void run() {
            Flags.about("--concept", () -> ToyDemo.requireShape(concept));
            ToyDemo.Settings d = ToyDemo.Settings.defaults(concept);
            boolean uce = "uce".equals(method);
            if (uce && (iterations != null || lr != null)) throw new UserError("--iterations, --lr: UCE does not train; drop them with --method uce");
            if (iterations != null && iterations < 1) throw new UserError("--iterations must be at least 1, got " + iterations);
            if (samples != null && samples < 1) throw new UserError("--samples must be at least 1, got " + samples);
            if (lr != null && !(lr > 0)) throw new UserError("--lr must be positive, got " + lr);
            ToyEval.Settings e = d.eval();
            ToyDemo.Settings s = new ToyDemo.Settings(concept, iterations != null ? iterations : d.iterations(),
                    lr != null ? lr : d.lr(), d.negativeGuidance(), d.startGuidance(), d.ddimSteps(),
                    method != null && !uce ? Flags.about("--method", () -> esdnative.esd.TrainMethod.parse(method)) : d.method(),
                    new ToyEval.Settings(samples != null ? samples : e.samplesPerClass(), e.ddimSteps(), e.guidance(), e.seed()),
                    seed, fast);
            if (uce) runUceDemo(s, base, output);
            else runDemo(s, base, output);
        }
    }

    /** Runs the demo on the CPU backend into {@code output} (default esd-toy-CONCEPT). */
    public static void runDemo(ToyDemo.Settings s, Path base, Path output) {
        // a method that trains nothing in the toy UNet is refused before the demo judges anything
        try (ToyAssets assets = ToyAssets.extract()) {
            var names = esdnative.model.unet.UNet2DConditionModel.parameterShapes(
                    esdnative.model.ModelLoader.unetConfig(base != null ? base : assets.model(), null)).keySet();
            Flags.about("--method " + s.method().id(), () -> esdnative.esd.TrainedNames.selector(s.method(), names));
        }
        Path out = output != null ? output : Path.of("esd-toy-" + s.concept());
        try (CpuBackend be = new CpuBackend()) {
            java.nio.file.Files.createDirectories(out);
            ToyDemo.run(be, s, base, out, System.err);
        } catch (java.io.IOException ex) {
            throw new UserError("--output: cannot create " + out + ": " + ex.getMessage(), ex);
        }
    }

    /** As {@link #runDemo}, erasing with UCE (see {@link ToyUceDemo}). */
    static void runUceDemo(ToyDemo.Settings s, Path base, Path output) {
        Path out = output != null ? output : Path.of("uce-toy-" + s.concept());
        try (CpuBackend be = new CpuBackend()) {
            java.nio.file.Files.createDirectories(out);
            ToyUceDemo.run(be, s, base, out, System.err);
        } catch (java.io.IOException ex) {
            throw new UserError("--output: cannot create " + out + ": " + ex.getMessage(), ex);
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Generate a fixed seeded set of images per class with each model, judge them, print accuracy A -> B.")
    static final class Eval implements Runnable {
        @Option(names = "--model", required = true, description = "Toy model folders (give one or two).")
        java.util.List<Path> models;
        @Option(names = "--samples", defaultValue = "32", description = "Samples per class (default ${DEFAULT-VALUE}).")
        int samples;
        @Option(names = "--ddim-steps", defaultValue = "20", description = "Default ${DEFAULT-VALUE}.")
        int ddimSteps;
        @Option(names = "--guidance", defaultValue = "5", description = "Default ${DEFAULT-VALUE}.")
        float guidance;
        @Option(names = "--judge", description = "Judge .safetensors (default: the built-in one).")
        Path judgePath;
        @Option(names = "--seed", defaultValue = "0", description = "Default ${DEFAULT-VALUE}.")
        long seed;

        @Override
        public void run() {
            if (models.size() > 2) throw new UserError("--model: give one or two models, got " + models.size());
            if (samples < 1 || ddimSteps < 1) throw new UserError("--samples and --ddim-steps must be at least 1");
            try (CpuBackend be = new CpuBackend(); ToyAssets assets = ToyAssets.extract()) {
                ShapeJudge judge = ShapeJudge.load(be, judgePath != null ? judgePath : assets.judge());
                ToyEval.Settings s = new ToyEval.Settings(samples, ddimSteps, guidance, seed);
                java.util.List<double[]> results = new java.util.ArrayList<>();
                for (Path m : models) {
                    try (var model = esdnative.model.ModelLoader.load(be, m, null, null)) {
                        results.add(ToyEval.run(be, model, model.unetWeights(), judge, s).accuracy());
                    }
                }
                StringBuilder t = new StringBuilder(String.format(java.util.Locale.ROOT, "%-10s %s%n", "class",
                        models.size() == 2 ? "A -> B" : "accuracy"));
                for (int c = 0; c < ShapesDataset.CLASSES.size(); c++) {
                    t.append(String.format(java.util.Locale.ROOT, "%-10s %6.1f%%", ShapesDataset.CLASSES.get(c), 100 * results.get(0)[c]));
                    if (results.size() == 2) t.append(String.format(java.util.Locale.ROOT, " -> %6.1f%%", 100 * results.get(1)[c]));
                    t.append('\n');
                }
                System.out.print(t);
            }
        }
    }
}
