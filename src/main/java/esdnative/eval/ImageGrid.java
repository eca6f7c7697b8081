package esdnative.eval;

import esdnative.util.UserError;
import esdnative.io.AtomicFile;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The labelled contact sheet of an evaluation: a row per prompt (its text on the left), a column per model (its
 * label on top), each cell the prompt's first sample scaled to a common size, captioned with its measurements.
 */
final class ImageGrid {
    private static final int LABEL_WIDTH = 220, HEADER = 24, CAPTION = 16, PAD = 4;

    private ImageGrid() {}

    static void write(Path file, Path out, EvalReport report) {
        int rows = report.prompts().prompts().size(), cols = report.models().size();
        EvalImage[][] first = new EvalImage[rows][cols];
        for (EvalImage i : report.images()) {
            if (first[i.prompt()][i.model()] == null) first[i.prompt()][i.model()] = i;
        }
        int largest = 0;
        for (EvalImage i : report.images()) {
            if (i == first[i.prompt()][i.model()]) largest = Math.max(largest, read(out.resolve(i.path())).getWidth());
        }
        int cell = Math.clamp(largest, 128, 256);
        int width = LABEL_WIDTH + cols * (cell + PAD) + PAD, height = HEADER + rows * (cell + CAPTION + PAD) + PAD;
        BufferedImage grid = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = grid.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
        for (int c = 0; c < cols; c++) {
            g.drawString(fit(g.getFontMetrics(), report.models().get(c).label(), cell), LABEL_WIDTH + c * (cell + PAD) + PAD, HEADER - 7);
        }
        for (int r = 0; r < rows; r++) {
            int top = HEADER + r * (cell + CAPTION + PAD);
            g.setFont(new Font(Font.SANS_SERIF, report.erased(r) ? Font.BOLD : Font.PLAIN, 12));
            drawWrapped(g, report.prompts().prompts().get(r).prompt(), PAD, top + 14, LABEL_WIDTH - 2 * PAD, cell);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
            for (int c = 0; c < cols; c++) {
                EvalImage image = first[r][c];
                if (image == null) continue;
                int left = LABEL_WIDTH + c * (cell + PAD) + PAD;
                BufferedImage picture = read(out.resolve(image.path()));
                g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, picture.getWidth() < cell
                        ? RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR : RenderingHints.VALUE_INTERPOLATION_BILINEAR);
                g.drawImage(picture, left, top, cell, cell, null);
                g.setColor(Color.DARK_GRAY);
                g.drawString(fit(g.getFontMetrics(), caption(image), cell), left, top + cell + CAPTION - 4);
                g.setColor(Color.BLACK);
            }
        }
        g.dispose();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            ImageIO.write(grid, "png", bytes);
        } catch (IOException e) {
            throw new UserError(file + ": cannot encode PNG: " + e.getMessage(), e);
        }
        AtomicFile.write(file, ch -> ch.write(ByteBuffer.wrap(bytes.toByteArray())));
    }

    private static BufferedImage read(Path png) {
        try {
            return ImageIO.read(png.toFile());
        } catch (IOException e) {
            throw new UserError(png + ": cannot read image: " + e.getMessage(), e);
        }
    }

    private static String caption(EvalImage i) {
        StringBuilder s = new StringBuilder();
        if (i.clipScore() != null) s.append(String.format(Locale.ROOT, "CLIP %.1f", i.clipScore()));
        if (i.predictedClass() != null) s.append(s.isEmpty() ? "" : " · ").append(i.predictedClass());
        if (Boolean.TRUE.equals(i.nsfw())) s.append(s.isEmpty() ? "" : " · ").append("NSFW");
        return s.toString();
    }

    /** The text cut with an ellipsis to fit {@code width} pixels. */
    private static String fit(FontMetrics fm, String text, int width) {
        if (fm.stringWidth(text) <= width) return text;
        String cut = text;
        while (!cut.isEmpty() && fm.stringWidth(cut + "…") > width) cut = cut.substring(0, cut.length() - 1);
        return cut + "…";
    }

    /** Word-wrapped lines within {@code width}, as many as fit in {@code height}. */
    private static void drawWrapped(Graphics2D g, String text, int x, int y, int width, int height) {
        FontMetrics fm = g.getFontMetrics();
        int lineHeight = fm.getHeight(), maxLines = Math.max(1, height / lineHeight);
        StringBuilder line = new StringBuilder();
        int lines = 0;
        for (String word : text.split(" ")) {
            String candidate = line.isEmpty() ? word : line + " " + word;
            if (fm.stringWidth(candidate) > width && !line.isEmpty()) {
                if (lines == maxLines - 1) break;
                g.drawString(line.toString(), x, y + lines++ * lineHeight);
                line.setLength(0);
                line.append(word);
            } else {
                line.setLength(0);
                line.append(candidate);
            }
        }
        if (!line.isEmpty()) g.drawString(fit(fm, line.toString(), width), x, y + lines * lineHeight);
    }
}
