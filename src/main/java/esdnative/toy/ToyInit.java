package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

/**
 * PyTorch's default initialisation for a model trained from scratch: normalisation scales 1 and shifts 0; every
 * other weight and its bias uniform in ±1/√fan_in (what nn.Linear and nn.Conv2d's kaiming_uniform(a=√5) give).
 */
final class ToyInit {
    private ToyInit() {}

    static void initialise(Backend be, Weights params, Rng rng) {
        for (var e : params.asMap().entrySet()) {
            String name = e.getKey();
            Tensor t = e.getValue();
            boolean isBias = name.endsWith(".bias");
            String weightName = isBias ? name.substring(0, name.length() - ".bias".length()) + ".weight" : name;
            Tensor weight = params.find(weightName);
            if (weight != null && weight.rank() == 1) {
                be.fill(t, isBias ? 0f : 1f); // group/layer norm
                continue;
            }
            int fanIn = (int) (weight.size() / weight.dim(0));
            float bound = (float) (1 / Math.sqrt(fanIn));
            float[] values = new float[(int) t.size()];
            for (int i = 0; i < values.length; i++) values[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
            be.copyFromHost(t, values, 0);
        }
    }
}
