package esdnative.checkpoint;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.testing.Fixtures;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The one folder rule (README.md, "Model layouts"): the standard weights name first; else the only .safetensors file
 * (a variant such as .fp16.safetensors); several variants without the standard file and .bin-only folders refused.
 */
class DiffusersFolderTest {
    private static final String UNET = "diffusion_pytorch_model.safetensors";

    @TempDir Path tmp;

    /** tiny-sd-a copied, so that its unet/ folder can be rearranged. */
    private Path copyOfTinySd() throws IOException {
        Path from = Fixtures.path("tiny-sd-a"), to = tmp.resolve("tiny-sd-a");
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else Files.copy(p, target);
            }
        }
        return to;
    }

    @Test
    void theOnlyVariantFileIsLoadedAsTheStandardOneWouldBe() throws IOException {
        Path model = copyOfTinySd();
        Path variant = Files.move(model.resolve("unet").resolve(UNET), model.resolve("unet/diffusion_pytorch_model.fp16.safetensors"));
        assertEquals(variant, DiffusersFolder.weightsFile(model.resolve("unet")));
        try (Backend be = new CpuBackend();
             StableDiffusion fromVariant = ModelLoader.load(be, model, null, null);
             StableDiffusion original = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null)) {
            assertEquals(variant, fromVariant.checkpoint().file(CompVisNames.Component.UNET));
            for (String name : original.unetWeights().asMap().keySet()) {
                assertArrayEquals(be.toHost(original.unetWeights().get(name)), be.toHost(fromVariant.unetWeights().get(name)), 0f, name);
            }
        }
    }

    @Test
    void theStandardNameWinsOverVariantsAndPickles() throws IOException {
        Path unet = copyOfTinySd().resolve("unet");
        Files.copy(unet.resolve(UNET), unet.resolve("diffusion_pytorch_model.fp16.safetensors"));
        Files.writeString(unet.resolve("diffusion_pytorch_model.bin"), "not read");
        assertEquals(unet.resolve(UNET), DiffusersFolder.weightsFile(unet));
    }

    @Test
    void severalVariantsWithoutTheStandardFileAreRefusedByName() throws IOException {
        Path model = copyOfTinySd();
        Path unet = model.resolve("unet");
        Files.copy(unet.resolve(UNET), unet.resolve("diffusion_pytorch_model.fp16.safetensors"));
        Files.move(unet.resolve(UNET), unet.resolve("diffusion_pytorch_model.non_ema.safetensors"));
        try (Backend be = new CpuBackend()) {
            UserError e = assertThrows(UserError.class, () -> ModelLoader.load(be, model, null, null));
            assertTrue(e.getMessage().startsWith(unet + ": several weight files and none named " + UNET + ": "
                    + "diffusion_pytorch_model.fp16.safetensors, diffusion_pytorch_model.non_ema.safetensors;"), e.getMessage());
            assertTrue(e.getMessage().contains("keep only the one to load in the folder, or rename it to " + UNET), e.getMessage());
        }
    }

    @Test
    void aFolderWithOnlyPytorchBinWeightsIsRefusedAsAPickle() throws IOException {
        Path model = copyOfTinySd();
        Path unet = model.resolve("unet");
        // the fixture's torch.save zip: a real pickle, never opened
        Files.copy(Fixtures.path("ckpt/tiny-sd-a.ckpt"), unet.resolve("diffusion_pytorch_model.bin"));
        Files.delete(unet.resolve(UNET));
        try (Backend be = new CpuBackend()) {
            UserError e = assertThrows(UserError.class, () -> ModelLoader.load(be, model, null, null));
            assertTrue(e.getMessage().startsWith(unet + ": only PyTorch .bin weights (diffusion_pytorch_model.bin), which are pickles"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("convert the folder to safetensors first"), e.getMessage());
        }
    }

    @Test
    void anEmptyComponentFolderIsRefused() throws IOException {
        Path unet = Files.createDirectories(tmp.resolve("m/unet"));
        UserError e = assertThrows(UserError.class, () -> DiffusersFolder.weightsFile(unet));
        assertEquals(unet + ": no weights in this folder (no " + UNET + ")", e.getMessage());
    }
}
