package esdnative.eval;

import esdnative.util.UserError;
import esdnative.esd.ConceptPresets;
import esdnative.toy.ShapesDataset;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;

/**
 * The prompts of an evaluation and the classes they may show: read from a file (the ESD paper's CSV layout
 * {@code case_number,prompt,evaluation_seed[,class]} with a header, columns in any order, or plain text with one
 * prompt a line) or a built-in preset.
 *
 * @param classTemplate how a class name becomes the zero-shot text, e.g. "an image of a {class}"
 */
public record EvalPrompts(List<EvalPrompt> prompts, String classTemplate) {
    public static final String IMAGENETTE_TEMPLATE = "an image of a {class}";
    /** The 10 Imagenette classes of the paper's object-erasure experiments. */
    public static final List<String> IMAGENETTE = List.of("cassette player", "chain saw", "church", "gas pump", "tench",
            "garbage truck", "english springer", "golf ball", "parachute", "french horn");
    /** Famous artists the paper also shows, as controls beside its erased-artist list. */
    public static final List<String> FAMOUS_ARTISTS = List.of("Vincent van Gogh", "Pablo Picasso", "Rembrandt",
            "Andy Warhol", "Caravaggio");
    public static final List<String> PRESETS = List.of("imagenette", "artists", "shapes");

    /** The distinct classes in order of first appearance (empty when no prompt carries one). */
    public List<String> classes() {
        LinkedHashSet<String> classes = new LinkedHashSet<>();
        for (EvalPrompt p : prompts) if (p.className() != null) classes.add(p.className());
        return List.copyOf(classes);
    }

    /** The zero-shot text of a class. */
    public String classText(String className) { return classTemplate.replace("{class}", className); }

    /**
     * A built-in set, every prompt starting at {@code seed}: imagenette ("an image of a {class}" for the 10
     * classes), artists (the paper code's erased-artist list and 5 famous others, "a painting in the style of
     * {artist}", each its own class), shapes (the toy world's "a {shape}").
     */
    public static EvalPrompts preset(String name, long seed) {
        List<EvalPrompt> prompts = new ArrayList<>();
        switch (name) {
            case "imagenette" -> {
                for (String c : IMAGENETTE) prompts.add(new EvalPrompt(IMAGENETTE_TEMPLATE.replace("{class}", c), seed, prompts.size(), c));
                return new EvalPrompts(prompts, IMAGENETTE_TEMPLATE);
            }
            case "artists" -> {
                List<String> artists = new ArrayList<>(ConceptPresets.preset("allartist"));
                artists.addAll(FAMOUS_ARTISTS);
                for (String a : artists) prompts.add(new EvalPrompt("a painting in the style of " + a, seed, prompts.size(), a));
                return new EvalPrompts(prompts, "a painting in the style of {class}");
            }
            case "shapes" -> {
                for (String c : ShapesDataset.CLASSES) prompts.add(new EvalPrompt("a " + c, seed, prompts.size(), c));
                return new EvalPrompts(prompts, "a {class}");
            }
            default -> throw new UserError("unknown preset '" + name + "'; valid: " + String.join(", ", PRESETS));
        }
    }

    /** A .csv file (paper layout) or any other file as plain text, one prompt a line, all at {@code seed}. */
    public static EvalPrompts read(Path file, long seed) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage(), e);
        }
        EvalPrompts prompts = file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv")
                ? fromCsv(file, String.join("\n", lines)) : fromLines(lines, seed);
        if (prompts.prompts().isEmpty()) throw new UserError(file + " holds no prompt");
        return prompts;
    }

    static EvalPrompts fromLines(List<String> lines, long seed) {
        List<EvalPrompt> prompts = new ArrayList<>();
        for (String line : lines) {
            if (!line.isBlank()) prompts.add(new EvalPrompt(line.strip(), seed, prompts.size(), null));
        }
        return new EvalPrompts(prompts, IMAGENETTE_TEMPLATE);
    }

    static EvalPrompts fromCsv(Path file, String text) {
        List<List<String>> rows = Csv.parse(file, text);
        if (rows.isEmpty()) return new EvalPrompts(List.of(), IMAGENETTE_TEMPLATE);
        List<String> header = rows.getFirst().stream().map(h -> h.strip().toLowerCase(Locale.ROOT)).toList();
        int prompt = header.indexOf("prompt"), seed = header.indexOf("evaluation_seed");
        int caseNumber = header.indexOf("case_number"), cls = header.indexOf("class");
        if (prompt < 0 || seed < 0) {
            throw new UserError(file + ": the CSV header needs 'prompt' and 'evaluation_seed' columns"
                    + " (the paper's layout: case_number,prompt,evaluation_seed[,class]); got " + rows.getFirst());
        }
        List<EvalPrompt> prompts = new ArrayList<>();
        for (int r = 1; r < rows.size(); r++) {
            List<String> row = rows.get(r);
            if (row.size() == 1 && row.getFirst().isBlank()) continue;
            if (row.size() != header.size()) {
                throw new UserError(file + " row " + (r + 1) + " has " + row.size() + " fields, the header "
                        + header.size());
            }
            prompts.add(new EvalPrompt(row.get(prompt).strip(), number(file, r, "evaluation_seed", row.get(seed)),
                    caseNumber >= 0 ? (int) number(file, r, "case_number", row.get(caseNumber)) : prompts.size(),
                    cls >= 0 && !row.get(cls).isBlank() ? row.get(cls).strip() : null));
        }
        return new EvalPrompts(prompts, IMAGENETTE_TEMPLATE);
    }

    private static long number(Path file, int row, String column, String value) {
        try {
            return (long) Double.parseDouble(value.strip());   // pandas may write "42.0"
        } catch (NumberFormatException e) {
            throw new UserError(file + " row " + (row + 1) + ": " + column + " '" + value + "' is not a number");
        }
    }
}
