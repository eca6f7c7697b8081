package esdnative.esd;

import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.TensorEntries;
import esdnative.io.DType;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.model.StableDiffusion;

/**
 * The source checkpoint's UNet tensors by diffusers name, whatever its layout (folder, .safetensors or .ckpt single
 * file; a checkpoint's raw UNet or its EMA copy, as the model was loaded), read from the handle the model was loaded
 * from: dtype, shape, and the tensor to write when it is left untouched (its bytes, losslessly).
 */
final class UnetSource {
    private final ModelWeights weights;

    UnetSource(StableDiffusion model) {
        this.weights = model.checkpoint();
    }

    DType dtype(String diffusersName) {
        return weights.dtype(Component.UNET, diffusersName);
    }

    long[] shape(String diffusersName) {
        return weights.shape(Component.UNET, diffusersName);
    }

    /** The tensor as stored: same dtype, same values (valid while the model is open). */
    Entry untouched(String diffusersName) {
        ModelWeights.Source s = weights.source(Component.UNET, diffusersName);
        return TensorEntries.of(s.file(), s.name(), shape(diffusersName), null);
    }
}
