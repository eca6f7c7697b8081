package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.optim.Adam;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.text.ClipTokenizer;
import esdnative.util.Rng;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Pretrains the toy base model from scratch: DDPM ε-prediction loss on {@link ShapesDataset} images, one uniform
 * timestep in [0, 1000) per sample, SD's scaled_linear betas, 10% empty prompts (for classifier-free guidance),
 * Adam with a constant learning rate that drops to {@code lr/4} for the last quarter of the steps, and an
 * exponential moving average of the weights (what is saved).
 */
public final class ToyPretrain {
    /** Run settings; {@code saveEvery} ≤ 0 writes only at the end. */
    public record Settings(int imageSize, int channels, int steps, int batch, float lr, float emaDecay, float dropPrompt,
                           long seed, int saveEvery) {}

    /**
     * Trains from scratch ({@code init} null) or continues from a toy model folder written by an earlier run (its
     * UNet weights and text encoder; Adam starts afresh).
     */
    public static void run(Backend be, Settings s, Path init, Path out, PrintStream log) {
        if (init == null) {
            run(be, s, out, log);
            return;
        }
        try (StableDiffusion start = ModelLoader.load(be, init, null, null)) {
            if (!start.unet().equals(ToyModel.unetConfig(s.imageSize(), s.channels()))) {
                throw new UserError(init + " is not a toy model of " + s.imageSize() + " px and " + s.channels() + " channels");
            }
            train(be, s, start.unetWeights(), start.textEncoder(), new Rng(s.seed()), out, log);
        }
    }

    private ToyPretrain() {}

    /** Trains and writes the model folder to {@code out}; progress (loss, s/step) goes to {@code log}. */
    public static void run(Backend be, Settings s, Path out, PrintStream log) {
        UNetConfig config = ToyModel.unetConfig(s.imageSize(), s.channels());
        Weights params = Weights.allocate(be, UNet2DConditionModel.parameterShapes(config));
        Rng rng = new Rng(s.seed()); // draws the initial weights, then the batches
        ToyInit.initialise(be, params, rng);
        train(be, s, params, ToyText.encoder(be, s.seed()), rng, out, log);
    }

    private static void train(Backend be, Settings s, Weights params, ClipTextModel text, Rng rng, Path out,
                              PrintStream log) {
        UNetConfig config = ToyModel.unetConfig(s.imageSize(), s.channels());
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        Weights grads = Weights.allocate(be, unet.parameterShapes());
        int count = (int) params.flat().size();
        float[] ema = be.toHost(params.flat());
        Adam lowLr = null;
        Adam adam = new Adam(be, params, Adam.Config.torchDefaults(s.lr()));

        Path tokenizerDir = tempTokenizer();
        PromptContexts contexts = new PromptContexts(be, ClipTokenizer.load(tokenizerDir), text);
        ShapesDataset data = new ShapesDataset(s.imageSize());
        DdimScheduler schedule = new DdimScheduler(ToyModel.scheduler());
        float[] alphasCumprod = schedule.alphasCumprod();
        int pixels = 3 * s.imageSize() * s.imageSize();
        log.printf("toy pretrain: %d UNet parameters, %d steps of batch %d, lr %g, %dx%d images%n",
                count, s.steps(), s.batch(), s.lr(), s.imageSize(), s.imageSize());

        long start = System.nanoTime();
        double lossSum = 0;
        int lossCount = 0;
        for (int step = 1; step <= s.steps(); step++) {
            // a batch: x_t = √ᾱ x0 + √(1−ᾱ) ε per sample, the target is ε
            float[] noisy = new float[s.batch() * pixels];
            float[] noise = rng.normal(s.batch() * pixels);
            float[] timesteps = new float[s.batch()];
            List<String> prompts = new ArrayList<>();
            for (int b = 0; b < s.batch(); b++) {
                ShapesDataset.Sample sample = data.next(rng);
                int t = rng.nextInt(0, alphasCumprod.length);
                timesteps[b] = t;
                prompts.add(rng.nextDouble() < s.dropPrompt() ? "" : sample.prompt());
                float a = (float) Math.sqrt(alphasCumprod[t]), sigma = (float) Math.sqrt(1 - alphasCumprod[t]);
                for (int i = 0; i < pixels; i++) {
                    noisy[b * pixels + i] = a * sample.pixels()[i] + sigma * noise[b * pixels + i];
                }
            }
            int size = s.imageSize();
            Tensor x = be.fromHost(noisy, s.batch(), 3, size, size);
            Tensor target = be.fromHost(noise, s.batch(), 3, size, size);
            Tensor context = contexts.batch(prompts);

            grads.fill(be, 0f);
            UNet2DConditionModel.Activations acts = unet.forward(be, params, x, timesteps, context);
            float loss = be.mseLoss(acts.output(), target, target.size());
            Tensor dOut = be.zeros(x.shape());
            be.mseLossBackward(dOut, acts.output(), target, target.size(), 1f);
            unet.backward(be, params, grads, acts, dOut, null, null);
            if (step > s.steps() * 3 / 4) {
                // last quarter: a lower learning rate, keeping Adam's moments
                if (lowLr == null) {
                    lowLr = new Adam(be, params, Adam.Config.torchDefaults(s.lr() / 4));
                    lowLr.restore(be, adam.stepCount(), List.of(be.toHost(adam.firstMoment())), List.of(be.toHost(adam.secondMoment())));
                }
                lowLr.step(be, params, grads);
            } else {
                adam.step(be, params, grads);
            }
            updateEma(ema, be.toHost(params.flat()), Math.min(s.emaDecay(), (1f + step) / (10f + step)));

            lossSum += loss;
            lossCount++;
            if (step % 25 == 0 || step == s.steps()) {
                double elapsed = (System.nanoTime() - start) / 1e9;
                log.printf("step %d/%d  loss %.4f (mean of last %d)  %.2f s/step  %.0f s elapsed%n", step, s.steps(),
                        lossSum / lossCount, lossCount, elapsed / step, elapsed);
                log.flush();
                lossSum = 0;
                lossCount = 0;
            }
            if (step == s.steps() || s.saveEvery() > 0 && step % s.saveEvery() == 0) {
                save(be, out, config, unet, ema, text, s, step);
                log.printf("saved %s at step %d%n", out, step);
            }
        }
    }

    private static void save(Backend be, Path out, UNetConfig config, UNet2DConditionModel unet, float[] ema,
                             ClipTextModel text, Settings s, int step) {
        Weights emaWeights = Weights.allocate(be, unet.parameterShapes());
        be.copyFromHost(emaWeights.flat(), ema, 0);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("esd_native_toy", "pretrained");
        meta.put("steps", Integer.toString(step));
        meta.put("settings", s.toString());
        ToyModel.save(be, out, config, emaWeights, text, meta);
    }

    private static void updateEma(float[] ema, float[] params, float decay) {
        for (int i = 0; i < ema.length; i++) ema[i] = decay * ema[i] + (1 - decay) * params[i];
    }

    /** The toy tokenizer files in a fresh temp folder (deleted at exit). */
    static Path tempTokenizer() {
        try {
            Path dir = Files.createTempDirectory("esd-toy-tokenizer");
            ToyText.writeTokenizer(dir);
            // deleteOnExit runs in reverse order: the folder last
            for (Path p : List.of(dir, dir.resolve("vocab.json"), dir.resolve("merges.txt"), dir.resolve("tokenizer_config.json"))) {
                p.toFile().deleteOnExit();
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
