package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** CLIPImageProcessor bit-exact against transformers 4.33 + Pillow 9.4 on the fixtures' test PNGs. */
class ClipImageProcessorTest {
    private static final String[] CLIP_IMAGES = {"img0_rgb_32x32.png", "img1_rgb_48x40.png", "img2_rgba_40x40.png",
            "img3_rgb_24x36.png"};

    /** A '|u1' .npy's data: its last {@code count} bytes (numpy writes the header first, then the C-order data). */
    static byte[] u8(Path npy, int count) {
        try {
            byte[] all = Files.readAllBytes(npy);
            return Arrays.copyOfRange(all, all.length - count, all.length);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void clipStagesAndPixelValuesAreBitExact() {
        Path golden = Fixtures.path("tiny-clip-golden");
        checkStages(ClipImageProcessor.read(Fixtures.path("tiny-clip/preprocessor_config.json")), golden, "clip_",
                CLIP_IMAGES, "clip_pixel_values");
    }

    /** The safety checker's legacy CLIPFeatureExtractor config (40 px), 8 images incl. gray and palette PNGs. */
    @Test
    void safetyCheckerStagesAndPixelValuesAreBitExact() {
        Path golden = Fixtures.path("tiny-safety-checker-golden");
        String[] images;
        try (var s = Files.list(golden.resolve("images"))) {
            images = s.map(p -> p.getFileName().toString()).sorted().toArray(String[]::new);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        assertEquals(8, images.length);
        checkStages(ClipImageProcessor.read(Fixtures.path("tiny-safety-checker/feature_extractor/preprocessor_config.json")),
                golden, "sc_", images, "sc_pixel_values");
    }

    private static void checkStages(ClipImageProcessor processor, Path golden, String prefix, String[] images,
                                    String pixelValues) {
        int crop = processor.cropHeight() * processor.cropWidth() * 3;
        byte[] croppedAll = u8(golden.resolve(prefix + "cropped_u8.npy"), images.length * crop);
        float[] expected = Npy.read(golden.resolve(pixelValues + ".npy")).floats();
        int per = expected.length / images.length;
        for (int k = 0; k < images.length; k++) {
            RgbImage rgb = RgbImage.read(golden.resolve("images").resolve(images[k]));
            assertArrayEquals(u8(golden.resolve(prefix + "image" + k + "_rgb_u8.npy"), rgb.rgb().length), rgb.rgb(),
                    images[k] + ": RGB conversion");
            RgbImage resized = processor.resize(rgb);
            JsonNode shape = Json.tree(golden.resolve("manifest.json")).path("files")
                    .path(prefix + "image" + k + "_resized_u8").path("shape");
            assertArrayEquals(new int[] {shape.get(0).asInt(), shape.get(1).asInt()}, new int[] {resized.height(), resized.width()}, images[k]);
            assertArrayEquals(u8(golden.resolve(prefix + "image" + k + "_resized_u8.npy"), resized.rgb().length),
                    resized.rgb(), images[k] + ": bicubic resize");
            assertArrayEquals(Arrays.copyOfRange(croppedAll, k * crop, (k + 1) * crop), processor.crop(resized).rgb(),
                    images[k] + ": center crop");
            float[] actual = processor.pixelValues(rgb);
            for (int i = 0; i < per; i++) {
                assertEquals(Float.floatToIntBits(expected[k * per + i]), Float.floatToIntBits(actual[i]),
                        images[k] + ": pixel value " + i);
            }
        }
    }
}
