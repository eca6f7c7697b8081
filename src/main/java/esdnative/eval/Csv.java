package esdnative.eval;

import esdnative.util.UserError;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** RFC 4180 CSV as pandas writes it: comma-separated, fields in double quotes may hold commas, quotes ("") and newlines. */
final class Csv {
    private Csv() {}

    static List<List<String>> parse(Path file, String text) {
        List<List<String>> rows = new ArrayList<>();
        List<String> row = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < text.length() && text.charAt(i + 1) == '"') {
                    field.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    field.append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                row.add(field.toString());
                field.setLength(0);
            } else if (c == '\n') {
                row.add(field.toString().replace("\r", ""));
                field.setLength(0);
                rows.add(row);
                row = new ArrayList<>();
            } else {
                field.append(c);
            }
        }
        if (quoted) throw new UserError(file + ": a quoted field is not closed");
        if (!field.isEmpty() || !row.isEmpty()) {
            row.add(field.toString().replace("\r", ""));
            rows.add(row);
        }
        return rows;
    }
}
