package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.checkpoint.ExpectedTensors;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.util.UserError;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.function.Function;
import java.util.function.Predicate;

/** Loads a UNet's parameters, checking the source against the names and shapes the config implies. */
public final class UNetWeights {
    private UNetWeights() {}

    /**
     * Loads every parameter of {@code config} from a tensor source (esdnative.model.ModelLoader reads every layout
     * through here).
     *
     * @param fileShapes every UNet tensor the source holds, name → shape
     * @param reader     a tensor's values as float32, by name
     * @param file       the source's name, for messages
     * @throws UserError when a parameter is missing or has the wrong shape, or the source holds extra tensors
     */
    public static Weights load(Backend be, UNetConfig config, Map<String, int[]> fileShapes,
                               Function<String, float[]> reader, String file) {
        SequencedMap<String, int[]> expected = UNet2DConditionModel.parameterShapes(config);
        ExpectedTensors.check(expected, fileShapes, ExpectedTensors.Extras.REFUSED, file, "UNet");
        return Weights.load(be, expected, reader);
    }

    /**
     * Declares the UNet's GEMM weights that {@code frozen} accepts (by name) frozen, for the backend to store as it
     * multiplies them ({@link Backend#freezeWeights}; CUDA in bf16: bfloat16). They are its tensors of rank 2 or
     * more: every linear and convolution weight, and nothing else (biases and norm scales are vectors).
     */
    public static void freeze(Backend be, Weights unet, Predicate<String> frozen) {
        List<Tensor> matrices = new ArrayList<>();
        unet.asMap().forEach((name, t) -> {
            if (t.rank() >= 2 && frozen.test(name)) matrices.add(t);
        });
        be.freezeWeights(matrices);
    }
}
