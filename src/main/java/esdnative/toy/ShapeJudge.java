package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.checkpoint.TensorEntries;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.model.Weights;
import esdnative.optim.Adam;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;

/**
 * The judge: a small CNN that names the shape in an image, trained by this engine on {@link ShapesDataset}.
 *
 * <p>x[n, 3, S, S] → conv3×3(3→16) SiLU → conv3×3 stride 2 (16→32) SiLU → conv3×3 stride 2 (32→32) SiLU →
 * flatten → linear(32·(S/4)² → 8) = logits. Softmax cross-entropy is computed on the host.
 */
public final class ShapeJudge {
    private static final int C1 = 16, C2 = 32, C3 = 32;
    private final int size;
    private final Weights params;

    public ShapeJudge(int size, Weights params) {
        this.size = size;
        this.params = params;
    }

    public static SequencedMap<String, int[]> parameterShapes(int size) {
        int flat = C3 * (size / 4) * (size / 4);
        SequencedMap<String, int[]> s = new LinkedHashMap<>();
        s.put("conv1.weight", new int[] {C1, 3, 3, 3});
        s.put("conv1.bias", new int[] {C1});
        s.put("conv2.weight", new int[] {C2, C1, 3, 3});
        s.put("conv2.bias", new int[] {C2});
        s.put("conv3.weight", new int[] {C3, C2, 3, 3});
        s.put("conv3.bias", new int[] {C3});
        s.put("fc.weight", new int[] {ShapesDataset.CLASSES.size(), flat});
        s.put("fc.bias", new int[] {ShapesDataset.CLASSES.size()});
        return s;
    }

    public Weights weights() { return params; }

    /** The side in pixels of the images it judges. */
    public int size() { return size; }

    /** What one forward keeps for backward. */
    private record Acts(Tensor x, Tensor h1, Tensor a1, Tensor h2, Tensor a2, Tensor h3, Tensor a3, Tensor logits) {}

    private Conv2dShape conv1(int n) { return new Conv2dShape(n, 3, size, size, C1, 3, 3, 1, 1); }

    private Conv2dShape conv2(int n) { return new Conv2dShape(n, C1, size, size, C2, 3, 3, 2, 1); }

    private Conv2dShape conv3(int n) { return new Conv2dShape(n, C2, size / 2, size / 2, C3, 3, 3, 2, 1); }

    private Acts forward(Backend be, Tensor x) {
        int n = x.dim(0);
        Tensor h1 = conv(be, x, conv1(n), "conv1");
        Tensor a1 = silu(be, h1);
        Tensor h2 = conv(be, a1, conv2(n), "conv2");
        Tensor a2 = silu(be, h2);
        Tensor h3 = conv(be, a2, conv3(n), "conv3");
        Tensor a3 = silu(be, h3);
        int classes = ShapesDataset.CLASSES.size();
        int flat = (int) (a3.size() / n);
        // logits[n, classes] = a3[n, flat] · fcᵀ + bias
        Tensor logits = be.zeros(n, classes);
        be.gemm(false, true, n, classes, flat, 1f, a3, flat, 0, params.get("fc.weight"), flat, 0, 0f, logits, classes, 0, 1);
        be.addRowBias(logits, params.get("fc.bias"), n, classes);
        return new Acts(x, h1, a1, h2, a2, h3, a3, logits);
    }

    private Tensor conv(Backend be, Tensor in, Conv2dShape s, String name) {
        Tensor out = be.zeros(s.n(), s.k(), s.outH(), s.outW());
        be.conv2d(out, in, params.get(name + ".weight"), params.get(name + ".bias"), s);
        return out;
    }

    private static Tensor silu(Backend be, Tensor h) {
        Tensor a = be.zeros(h.shape());
        be.silu(a, h, h.size());
        return a;
    }

    /** Accumulates parameter gradients for dLogits. */
    private void backward(Backend be, Weights grads, Acts a, Tensor dLogits) {
        int n = a.x().dim(0), classes = ShapesDataset.CLASSES.size(), flat = (int) (a.a3().size() / n);
        be.gemm(true, false, classes, flat, n, 1f, dLogits, classes, 0, a.a3(), flat, 0, 1f, grads.get("fc.weight"), flat, 0, 1);
        be.sumRows(grads.get("fc.bias"), dLogits, n, classes);
        Tensor dA3 = be.zeros(a.a3().shape());
        be.gemm(false, false, n, flat, classes, 1f, dLogits, classes, 0, params.get("fc.weight"), flat, 0, 1f, dA3, flat, 0, 1);
        Tensor dA2 = convBackward(be, grads, dA3, a.h3(), a.a2(), true, conv3(n), "conv3");
        Tensor dA1 = convBackward(be, grads, dA2, a.h2(), a.a1(), true, conv2(n), "conv2");
        convBackward(be, grads, dA1, a.h1(), a.x(), false, conv1(n), "conv1");
    }

    /** Through SiLU and one conv; returns dIn, or null when {@code inputGradient} is false. */
    private Tensor convBackward(Backend be, Weights grads, Tensor dAct, Tensor h, Tensor in, boolean inputGradient,
                                Conv2dShape s, String name) {
        Tensor dH = be.zeros(h.shape());
        be.siluBackward(dH, dAct, h, h.size());
        be.conv2dBackwardWeight(grads.get(name + ".weight"), grads.get(name + ".bias"), dH, in, s);
        if (!inputGradient) return null;
        Tensor dIn = be.zeros(in.shape());
        be.conv2dBackwardData(dIn, dH, params.get(name + ".weight"), s);
        return dIn;
    }

    /** Logits [n, classes] on the host for images [n, 3, S, S]. */
    public float[] logits(Backend be, Tensor images) {
        return be.toHost(forward(be, images).logits());
    }

    /** The predicted class of each image. */
    public int[] classify(Backend be, Tensor images) {
        float[] logits = logits(be, images);
        int classes = ShapesDataset.CLASSES.size();
        int[] out = new int[images.dim(0)];
        for (int i = 0; i < out.length; i++) {
            int best = 0;
            for (int c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
            out[i] = best;
        }
        return out;
    }

    /** Mean softmax cross-entropy; writes dLoss/dLogits into {@code dLogits}. */
    static float crossEntropy(float[] logits, int[] labels, float[] dLogits) {
        int classes = ShapesDataset.CLASSES.size(), n = labels.length;
        double loss = 0;
        for (int i = 0; i < n; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) max = Math.max(max, logits[i * classes + c]);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.exp(logits[i * classes + c] - max);
            for (int c = 0; c < classes; c++) {
                double p = Math.exp(logits[i * classes + c] - max) / sum;
                dLogits[i * classes + c] = (float) ((p - (c == labels[i] ? 1 : 0)) / n);
            }
            loss -= logits[i * classes + labels[i]] - max - Math.log(sum);
        }
        return (float) (loss / n);
    }

    /** Mean cross-entropy of a batch; accumulates its parameter gradients into {@code grads}. */
    float lossAndGradients(Backend be, Batch b, Weights grads) {
        int n = b.labels().length, classes = ShapesDataset.CLASSES.size();
        Acts a = forward(be, b.images());
        float[] dLogits = new float[n * classes];
        float loss = crossEntropy(be.toHost(a.logits()), b.labels(), dLogits);
        backward(be, grads, a, be.fromHost(dLogits, n, classes));
        return loss;
    }

    /** Trains a fresh judge on freshly drawn images; progress to {@code log}. */
    public static ShapeJudge train(Backend be, int size, int steps, int batch, float lr, long seed, PrintStream log) {
        Rng rng = new Rng(seed);
        Weights params = Weights.allocate(be, parameterShapes(size));
        ToyInit.initialise(be, params, rng);
        Weights grads = Weights.allocate(be, parameterShapes(size));
        ShapeJudge judge = new ShapeJudge(size, params);
        Adam adam = new Adam(be, params, Adam.Config.torchDefaults(lr));
        ShapesDataset data = new ShapesDataset(size);
        for (int step = 1; step <= steps; step++) {
            Batch b = Batch.draw(be, data, rng, batch);
            grads.fill(be, 0f);
            float loss = judge.lossAndGradients(be, b, grads);
            adam.step(be, params, grads);
            if (step % 50 == 0 || step == steps) log.printf("judge step %d/%d  loss %.4f%n", step, steps, loss);
        }
        return judge;
    }

    /** A batch of real images and their classes. */
    public record Batch(Tensor images, int[] labels) {
        public static Batch draw(Backend be, ShapesDataset data, Rng rng, int n) {
            int pixels = 3 * data.size() * data.size();
            float[] x = new float[n * pixels];
            int[] labels = new int[n];
            for (int i = 0; i < n; i++) {
                ShapesDataset.Sample s = data.next(rng);
                System.arraycopy(s.pixels(), 0, x, i * pixels, pixels);
                labels[i] = s.shape();
            }
            return new Batch(be.fromHost(x, n, 3, data.size(), data.size()), labels);
        }
    }

    /** Fraction of {@code n} fresh real images classified correctly. */
    public double accuracy(Backend be, ShapesDataset data, Rng rng, int n) {
        Batch b = Batch.draw(be, data, rng, n);
        int[] predicted = classify(be, b.images());
        int right = 0;
        for (int i = 0; i < n; i++) if (predicted[i] == b.labels()[i]) right++;
        return right / (double) n;
    }

    public void save(Backend be, Path file) {
        SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
        for (var e : params.asMap().entrySet()) {
            entries.put(e.getKey(), TensorEntries.of(be, e.getValue(), DType.F32));
        }
        SafetensorsWriter.write(file, entries, Map.of("esd_native_toy", "shape judge", "image_size", Integer.toString(size)));
    }

    public static ShapeJudge load(Backend be, Path file) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            int size = Integer.parseInt(f.metadata().getOrDefault("image_size", "16"));
            return new ShapeJudge(size, Weights.load(be, parameterShapes(size), f::readFloats));
        }
    }
}
