package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.util.Rng;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ToyModelTest {

    @Test
    void savedFolderLoadsAsAPixelSpaceModel(@TempDir Path dir) {
        try (Backend be = new CpuBackend()) {
            UNetConfig config = ToyModel.unetConfig(8, 8);
            Weights w = Weights.allocate(be, UNet2DConditionModel.parameterShapes(config));
            ToyInit.initialise(be, w, new Rng(1));
            ClipTextModel text = ToyText.encoder(be, 2);
            ToyModel.save(be, dir.resolve("m"), config, w, text, Map.of());
            StableDiffusion sd = ModelLoader.load(be, dir.resolve("m"), null, null);
            assertEquals(1, sd.vaeScaleFactor());
            assertEquals(config, sd.unet());
            assertArrayEquals(be.toHost(w.flat()), be.toHost(sd.unetWeights().flat()));
            assertArrayEquals(be.toHost(text.weights().flat()), be.toHost(sd.textEncoder().weights().flat()));
            assertEquals(ToyText.MAX_LENGTH, sd.tokenizer().maxLength());
        }
    }
}
