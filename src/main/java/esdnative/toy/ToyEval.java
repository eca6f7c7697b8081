package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Judged generation: for each class, a fixed seeded set of images from the prompt "a {class}" (the same noise for
 * every model, so before/after columns are comparable), classified by the {@link ShapeJudge}.
 */
public final class ToyEval {
    /** Sampling settings of an evaluation. */
    public record Settings(int samplesPerClass, int ddimSteps, float guidance, long seed) {}

    /** Per class: the images [k, 3, S, S] on the host and the fraction the judge names correctly. */
    public record Result(List<float[]> images, double[] accuracy) {
        public double mean(int exceptClass) {
            double sum = 0;
            int n = 0;
            for (int c = 0; c < accuracy.length; c++) {
                if (c != exceptClass) {
                    sum += accuracy[c];
                    n++;
                }
            }
            return sum / n;
        }
    }

    private ToyEval() {}

    public static String prompt(int shape) { return "a " + ShapesDataset.CLASSES.get(shape); }

    public static Result run(Backend be, StableDiffusion model, Weights unetWeights, ShapeJudge judge, Settings s) {
        UNet2DConditionModel unet = model.unetModel();
        PromptContexts contexts = new PromptContexts(be, model.tokenizer(), model.textEncoder());
        DdimScheduler scheduler = new DdimScheduler(model.scheduler());
        scheduler.setTimesteps(s.ddimSteps());
        int size = model.unet().sampleSize(), k = s.samplesPerClass(), pixels = 3 * size * size;
        List<float[]> images = new ArrayList<>();
        double[] accuracy = new double[ShapesDataset.CLASSES.size()];
        for (int c = 0; c < accuracy.length; c++) {
            float[] noise = new Rng(s.seed() * 1_000_003L + c).normal(k * pixels);
            Tensor x = ToySampler.sample(be, unet, unetWeights, scheduler, be.fromHost(noise, k, 3, size, size),
                    contexts.batch(Collections.nCopies(k, "")), contexts.batch(Collections.nCopies(k, prompt(c))),
                    s.guidance());
            float[] host = be.toHost(x);
            for (int i = 0; i < host.length; i++) host[i] = Math.max(-1f, Math.min(1f, host[i])); // as saved as an image
            int[] predicted = judge.classify(be, be.fromHost(host, k, 3, size, size));
            int right = 0;
            for (int p : predicted) if (p == c) right++;
            accuracy[c] = right / (double) k;
            images.add(host);
        }
        return new Result(images, accuracy);
    }
}
