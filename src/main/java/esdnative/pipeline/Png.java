package esdnative.pipeline;

import esdnative.util.UserError;
import esdnative.io.AtomicFile;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/** Writes an RGB image in [0, 1] (row-major, channels last) as an 8-bit PNG, atomically, with the JDK's ImageIO. */
public final class Png {
    private Png() {}

    public static void write(Path file, float[] hwc, int height, int width) {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int i = (y * width + x) * 3;
                img.setRGB(x, y, (to8(hwc[i]) << 16) | (to8(hwc[i + 1]) << 8) | to8(hwc[i + 2]));
            }
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", bytes);
        } catch (IOException e) {
            throw new UserError(file + ": cannot encode PNG: " + e.getMessage(), e);
        }
        AtomicFile.write(file, out -> out.write(ByteBuffer.wrap(bytes.toByteArray())));
    }

    /** As the diffusers pipeline's numpy_to_pil: round(x · 255), halves to even as numpy rounds. */
    private static int to8(float v) {
        return (int) Math.rint(Math.clamp(v, 0f, 1f) * 255f);
    }
}
