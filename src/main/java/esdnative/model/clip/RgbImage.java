package esdnative.model.clip;

import esdnative.util.UserError;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An 8-bit RGB image, row-major, channels last: {@code rgb[(y * width + x) * 3 + c]} as unsigned bytes.
 *
 * @param rgb height · width · 3 values 0..255
 */
public record RgbImage(int width, int height, byte[] rgb) {

    public RgbImage {
        if (width < 1 || height < 1 || rgb.length != width * height * 3) {
            throw new IllegalArgumentException(rgb.length + " bytes for a " + width + "×" + height + " RGB image");
        }
    }

    public int get(int x, int y, int c) { return rgb[(y * width + x) * 3 + c] & 0xFF; }

    /**
     * Reads a PNG (or any format ImageIO reads) as Pillow's {@code Image.open(f).convert("RGB")} does for 8-bit
     * images: RGBA drops alpha (no compositing), gray is copied to R, G and B, a palette is looked up.
     */
    public static RgbImage read(Path file) {
        BufferedImage img;
        try {
            img = Files.isRegularFile(file) ? ImageIO.read(file.toFile()) : null;
        } catch (IOException e) {
            throw new UserError(file + ": cannot read image: " + e.getMessage(), e);
        }
        if (img == null) throw new UserError(file + ": not a readable image");
        return of(img);
    }

    /** The image's RGB values; gray images by their stored samples (ImageIO's getRGB would apply a gamma). */
    public static RgbImage of(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        byte[] out = new byte[w * h * 3];
        Raster raster = img.getRaster();
        boolean gray = img.getColorModel() instanceof ComponentColorModel && raster.getNumBands() <= 2
                && raster.getSampleModel().getSampleSize(0) == 8;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                if (gray) {
                    byte v = (byte) raster.getSample(x, y, 0);
                    out[i] = v;
                    out[i + 1] = v;
                    out[i + 2] = v;
                } else {
                    int argb = img.getRGB(x, y);
                    out[i] = (byte) (argb >> 16);
                    out[i + 1] = (byte) (argb >> 8);
                    out[i + 2] = (byte) argb;
                }
            }
        }
        return new RgbImage(w, h, out);
    }
}
