package esdnative.toy;

import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.UserError;
import esdnative.util.Rng;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code esd-native toy ...}: the built-in shapes world. */
@Command(name = "toy", description = "The built-in 'shapes' world: a tiny pixel-space model to see ESD work on a CPU.",
        subcommands = {ToyCommand.Pretrain.class, ToyCommand.Judge.class})
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
                ToyPretrain.run(be, new ToyPretrain.Settings(size, channels, steps, batch, lr, ema, 0.1f, seed, saveEvery), out,
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
}
