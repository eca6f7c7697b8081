package esdnative.cli;

import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `generate` takes every size whose latents are whole (diffusers: multiples of 8 px for SD, its VAE factor), not
 * only multiples of the VAE factor × 2^(levels − 1). tiny-sd-a: VAE factor 2, a 2-level UNet.
 */
class GenerateSizesTest {
    @Test
    void sizesTheUNetCannotHalveEvenlyAreGenerated(@TempDir Path tmp) throws Exception {
        Path png = tmp.resolve("cat.png"), latents = tmp.resolve("latents.npy");
        // 42 × 34 px: latents 21 × 17, odd on both sides
        assertEquals(0, Main.run("generate", "--model", Fixtures.path("tiny-sd-a").toString(), "--prompt", "a photo of a cat",
                "--steps", "2", "--width", "42", "--height", "34", "--save-latents", latents.toString(),
                "--output", png.toString(), "--backend", "cpu"));
        BufferedImage image = ImageIO.read(png.toFile());
        assertEquals(42, image.getWidth());
        assertEquals(34, image.getHeight());
        NpyArray z = Npy.read(latents);
        assertArrayEquals(new int[] {1, 4, 17, 21}, z.shape());
        for (float v : z.floats()) assertTrue(Float.isFinite(v));

        // a size that is no whole number of latents is still refused, with nothing written
        Path refused = tmp.resolve("refused.png");
        assertEquals(2, Main.run("generate", "--model", Fixtures.path("tiny-sd-a").toString(), "--prompt", "a cat",
                "--width", "41", "--height", "34", "--output", refused.toString(), "--backend", "cpu"));
        assertFalse(refused.toFile().exists());
    }
}
