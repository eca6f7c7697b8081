package esdnative.esd;

import esdnative.io.DType;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.model.StableDiffusion;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.TensorEntries;

/**
 * The source checkpoint's UNet tensors by diffusers name, whatever its layout (folder, .safetensors or .ckpt single
 * file; a checkpoint's raw UNet or its EMA copy, as the model was loaded): dtype, shape, and the tensor to write
 * when it is left untouched (its bytes, losslessly).
 */
final class UnetSource implements AutoCloseable {
    private final ModelWeights weights;

    private UnetSource(ModelWeights weights) {
        this.weights = weights;
    }

    static UnetSource open(StableDiffusion model) {
        return new UnetSource(ModelWeights.open(model.source(), model.unetEma()));
    }

    DType dtype(String diffusersName) {
        return weights.dtype(Component.UNET, diffusersName);
    }

    long[] shape(String diffusersName) {
        return weights.shape(Component.UNET, diffusersName);
    }

    /** The tensor as stored: same dtype, same values (valid until close). */
    Entry untouched(String diffusersName) {
        ModelWeights.Source s = weights.source(Component.UNET, diffusersName);
        return TensorEntries.of(s.file(), s.name(), shape(diffusersName), null);
    }

    @Override
    public void close() { weights.close(); }
}
