package esdnative.backend.cuda;

import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the UNet leaves on the device, counted by the CUDA backend's allocator on a device that computes nothing (the
 * shapes and the allocations are those of a GPU run): an ESD-x iteration's pattern on tiny-sd-a's architecture.
 */
class UNetDeviceMemoryTest {
    private static final int SAMPLING_STEPS = 3;

    @Test
    void predictionsKeepOnlyTheirOutputsAndBackwardItsGradientsOnlyWhileInUse() {
        UNetConfig config = UNetConfig.tiny();
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        int side = config.sampleSize(), dim = config.crossAttentionDim().getFirst();
        try (CudaBackend be = new CudaBackend(new CountingDevice(), CudaBackend.MathMode.FP32)) {
            Weights weights = Weights.allocate(be, unet.parameterShapes());
            SequencedMap<String, int[]> trained = new LinkedHashMap<>();
            unet.parameterShapes().forEach((name, shape) -> {
                if (name.contains("attn2")) trained.put(name, shape);
            });
            Weights gradients = Weights.allocate(be, trained);
            Tensor one = be.zeros(1, config.inChannels(), side, side), two = be.zeros(2, config.inChannels(), side, side);
            Tensor context = be.zeros(1, 77, dim), contexts = be.zeros(2, 77, dim);
            try (Scope iteration = be.openScope()) {
                be.labelAllocations("sampling");
                for (int i = 0; i < SAMPLING_STEPS; i++) unet.predict(be, weights, two, new float[] {1, 1}, contexts);
                be.labelAllocations("saved activations");
                UNet2DConditionModel.Activations acts = unet.forward(be, weights, one, new float[] {1}, context);
                be.labelAllocations("backward");
                unet.backward(be, weights, gradients, acts, be.zeros(one.shape()), null, null);
            }
            MemoryLedger.Snapshot peak = be.memoryAtPeak();
            // the predictions' outputs, nothing else of theirs (their skips and block outputs went to the caller's scope)
            assertEquals(SAMPLING_STEPS * CudaAllocator.roundUp(two.size() * Float.BYTES), peak.inUse().get("sampling"),
                    be.memoryPeaks());
            // each layer's gradients are given back once passed on: far less than the saved activations
            long backward = peak.inUse().get("backward"), saved = peak.inUse().get("saved activations");
            assertTrue(backward < saved / 4, "backward " + backward + " bytes beside " + saved + " saved: " + be.memoryPeaks());
        }
    }
}
