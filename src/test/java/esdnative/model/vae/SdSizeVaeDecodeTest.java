package esdnative.model.vae;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SD's own VAE decoder size (kl-f8: 128/256/512/512 channels, 2 layers per block, 32 groups) decoding one 512 × 512
 * image, with random weights: its last levels run convolutions over 256 × 512² floats, where int index products
 * overflowed (issue 12.1). Only that it runs and gives finite pixels is checked; the values are checked against
 * diffusers on the tiny VAE (VaeDecoderTest).
 */
class SdSizeVaeDecodeTest {
    @Test
    void decodesA512PixelImage() {
        Backend be = new CpuBackend();
        VaeConfig config = VaeConfig.sd();
        Map<String, int[]> shapes = VaeDecoder.parameterShapes(config);
        Rng rng = new Rng(1);
        // PyTorch's default init bound, ±1/√fan_in, keeps activations ordinary through the 30-odd layers
        Weights w = VaeWeights.load(be, config, shapes, name -> {
            int[] shape = shapes.get(name);
            double bound = shape.length >= 2 ? 1 / Math.sqrt(Tensor.sizeOf(shape) / (double) shape[0]) : 0.02;
            float[] values = new float[(int) Tensor.sizeOf(shape)];
            for (int i = 0; i < values.length; i++) values[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
            return values;
        }, "random");
        Tensor latents = be.fromHost(new Rng(2).normal(4 * 64 * 64), 1, 4, 64, 64);
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long started = System.nanoTime(), cpuStarted = os.getProcessCpuTime();
        Tensor image = new VaeDecoder(config).decode(be, w, latents);
        System.out.printf("SD VAE decode at 512 px: %.1f s, %.1f CPU s%n", (System.nanoTime() - started) / 1e9,
                (os.getProcessCpuTime() - cpuStarted) / 1e9);
        assertArrayEquals(new int[] {1, 3, 512, 512}, image.shape());
        float[] pixels = be.toHost(image);
        for (float v : pixels) assertTrue(Float.isFinite(v), "non-finite pixel");
    }
}
