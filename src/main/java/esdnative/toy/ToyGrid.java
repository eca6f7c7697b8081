package esdnative.toy;

import esdnative.io.AtomicFile;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/** The before/after PNG: one row per class, {@code columns} samples before | a gap | the same seeds after. */
final class ToyGrid {
    private static final int ZOOM = 4;
    private static final int GAP = 8;

    private ToyGrid() {}

    static void write(Path file, List<float[]> before, List<float[]> after, int size, int columns) {
        int cell = size * ZOOM;
        BufferedImage img = new BufferedImage(2 * columns * cell + GAP, before.size() * cell, BufferedImage.TYPE_INT_RGB);
        for (int row = 0; row < before.size(); row++) {
            for (int col = 0; col < columns; col++) {
                draw(img, before.get(row), col, size, col * cell, row * cell);
                draw(img, after.get(row), col, size, columns * cell + GAP + col * cell, row * cell);
            }
        }
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", png);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        AtomicFile.write(file, ch -> ch.write(ByteBuffer.wrap(png.toByteArray())));
    }

    /** Image {@code index} of a batch [k, 3, size, size] in [-1, 1], zoomed with nearest neighbours. */
    private static void draw(BufferedImage img, float[] batch, int index, int size, int x0, int y0) {
        int plane = size * size, base = index * 3 * plane;
        if (base >= batch.length) return;
        for (int y = 0; y < size * ZOOM; y++) {
            for (int x = 0; x < size * ZOOM; x++) {
                int p = (y / ZOOM) * size + x / ZOOM;
                int rgb = 0;
                for (int c = 0; c < 3; c++) {
                    float v = Math.max(-1f, Math.min(1f, batch[base + c * plane + p]));
                    rgb = (rgb << 8) | Math.round((v + 1) * 127.5f);
                }
                img.setRGB(x0 + x, y0 + y, rgb);
            }
        }
    }
}
