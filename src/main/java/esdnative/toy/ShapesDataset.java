package esdnative.toy;

import esdnative.util.Rng;

import java.util.List;

/**
 * The built-in "shapes" world: small RGB images of one coloured shape on a dark background, drawn procedurally and
 * deterministically from a seed, with the prompt that describes them.
 *
 * <p>Each image: one of {@link #CLASSES}, one of {@link #COLOURS}, random centre, size and a small rotation (±20°,
 * so a square never turns into a diamond), a random grey background in [0, 0.25]; 4×4 supersampled edges. Pixels
 * are CHW floats in [-1, 1]. Prompts mix the bare word ("circle"), "a circle" and "a red circle" in equal parts.
 */
public final class ShapesDataset {
    public static final List<String> CLASSES =
            List.of("circle", "square", "triangle", "star", "cross", "ring", "heart", "diamond");
    public static final List<String> COLOURS = List.of("red", "green", "blue", "yellow", "magenta", "cyan");
    private static final float[][] RGB = {
            {1f, 0.15f, 0.1f}, {0.15f, 0.9f, 0.15f}, {0.2f, 0.35f, 1f},
            {1f, 0.9f, 0.1f}, {1f, 0.2f, 1f}, {0.1f, 0.95f, 1f}};
    private static final int SUPERSAMPLE = 4;
    private static final double MAX_ROTATION = Math.toRadians(20);

    /** One drawn image: pixels [3, size, size] in [-1, 1], its class and colour indices and its prompt. */
    public record Sample(float[] pixels, int shape, int colour, String prompt) {}

    private final int size;

    public ShapesDataset(int size) {
        if (size < 8) throw new IllegalArgumentException("images must be at least 8 pixels wide, got " + size);
        this.size = size;
    }

    public int size() { return size; }

    /** A random image of a random class. */
    public Sample next(Rng rng) {
        return draw(rng, rng.nextInt(0, CLASSES.size()));
    }

    /** A random image of the given class, with a prompt in one of the three forms. */
    public Sample draw(Rng rng, int shape) {
        int colour = rng.nextInt(0, COLOURS.size());
        String prompt = switch (rng.nextInt(0, 3)) {
            case 0 -> CLASSES.get(shape);
            case 1 -> "a " + CLASSES.get(shape);
            default -> "a " + COLOURS.get(colour) + " " + CLASSES.get(shape);
        };
        // radius in pixels: 28%–45% of the width; the centre keeps the whole shape inside the image
        double radius = size * (0.28 + 0.17 * rng.nextDouble());
        double cx = radius + (size - 2 * radius) * rng.nextDouble();
        double cy = radius + (size - 2 * radius) * rng.nextDouble();
        double angle = (2 * rng.nextDouble() - 1) * MAX_ROTATION;
        float background = (float) (0.25 * rng.nextDouble());
        float[] rgb = RGB[colour];

        float[] pixels = new float[3 * size * size];
        double cos = Math.cos(angle), sin = Math.sin(angle);
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                int inside = 0;
                for (int sy = 0; sy < SUPERSAMPLE; sy++) {
                    for (int sx = 0; sx < SUPERSAMPLE; sx++) {
                        // sub-pixel centre → shape coordinates (unit radius, y up, rotated by -angle)
                        double px = (x + (sx + 0.5) / SUPERSAMPLE - cx) / radius;
                        double py = -(y + (sy + 0.5) / SUPERSAMPLE - cy) / radius;
                        double u = cos * px + sin * py, v = -sin * px + cos * py;
                        if (contains(shape, u, v)) inside++;
                    }
                }
                float coverage = inside / (float) (SUPERSAMPLE * SUPERSAMPLE);
                for (int c = 0; c < 3; c++) {
                    float value = background + coverage * (rgb[c] - background);
                    pixels[(c * size + y) * size + x] = 2 * value - 1;
                }
            }
        }
        return new Sample(pixels, shape, colour, prompt);
    }

    /** Whether point (u, v) of the unit-radius shape's frame lies inside the shape. */
    static boolean contains(int shape, double u, double v) {
        double r = Math.hypot(u, v);
        return switch (CLASSES.get(shape)) {
            case "circle" -> r <= 1;
            case "square" -> Math.abs(u) <= 0.8 && Math.abs(v) <= 0.8;
            case "triangle" -> insidePolygon(u, v, TRIANGLE);
            case "star" -> insidePolygon(u, v, STAR);
            case "cross" -> Math.abs(u) <= 0.3 && Math.abs(v) <= 1 || Math.abs(v) <= 0.3 && Math.abs(u) <= 1;
            case "ring" -> r <= 1 && r >= 0.55;
            case "heart" -> heart(u, v);
            case "diamond" -> Math.abs(u) / 0.7 + Math.abs(v) <= 1;
            default -> throw new IllegalArgumentException("no shape " + shape);
        };
    }

    /** The classic implicit heart (x² + y² − 1)³ − x² y³ ≤ 0, scaled to the unit radius and centred. */
    private static boolean heart(double u, double v) {
        double x = u * 1.25, y = v * 1.25 + 0.15;
        double a = x * x + y * y - 1;
        return a * a * a - x * x * y * y * y <= 0;
    }

    private static final double[][] TRIANGLE = regularPolygon(3, 1, 1);
    private static final double[][] STAR = regularPolygon(10, 1, 0.45);

    /** Vertices of a polygon pointing up, radii alternating outer/inner (equal for a regular polygon). */
    private static double[][] regularPolygon(int vertices, double outer, double inner) {
        double[][] p = new double[vertices][];
        for (int i = 0; i < vertices; i++) {
            double a = Math.PI / 2 + 2 * Math.PI * i / vertices;
            double r = i % 2 == 0 ? outer : inner;
            p[i] = new double[] {r * Math.cos(a), r * Math.sin(a) - (vertices == 3 ? 0.2 : 0)};
        }
        return p;
    }

    /** Even-odd ray casting. */
    private static boolean insidePolygon(double x, double y, double[][] poly) {
        boolean inside = false;
        for (int i = 0, j = poly.length - 1; i < poly.length; j = i++) {
            double xi = poly[i][0], yi = poly[i][1], xj = poly[j][0], yj = poly[j][1];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
    }
}
