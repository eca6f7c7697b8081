package esdnative.sweep;

import esdnative.util.UserError;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A {@code --grid} such as {@code "lr=1e-5,2e-5;negative-guidance=1,2"}: axes separated by ';', each a flag name
 * (without "--") and its comma-separated values. {@link #points} is the cartesian product, the last axis varying
 * fastest, so the order is the one the user wrote.
 */
record Grid(Map<String, List<String>> axes) {
    private static final Pattern FLAG = Pattern.compile("[a-z][a-z0-9-]*");

    static Grid none() { return new Grid(Map.of()); }

    static Grid parse(String spec) {
        if (spec == null || spec.isBlank()) return none();
        Map<String, List<String>> axes = new LinkedHashMap<>();
        for (String axis : spec.split(";")) {
            if (axis.isBlank()) continue;
            int eq = axis.indexOf('=');
            if (eq < 0) throw new UserError("--grid: '" + axis.trim() + "' is not NAME=V1,V2,... (e.g. \"lr=1e-5,2e-5;negative-guidance=1,2\")");
            String name = axis.substring(0, eq).trim().replaceFirst("^--", "");
            if (!FLAG.matcher(name).matches()) throw new UserError("--grid: '" + name + "' is not a flag name (e.g. lr, negative-guidance)");
            List<String> values = Arrays.stream(axis.substring(eq + 1).split(",")).map(String::trim).toList();
            if (values.stream().anyMatch(String::isEmpty)) throw new UserError("--grid: " + name + " has an empty value");
            if (values.stream().distinct().count() != values.size()) throw new UserError("--grid: " + name + " repeats a value");
            if (axes.put(name, values) != null) throw new UserError("--grid: " + name + " is given twice");
        }
        if (axes.isEmpty()) throw new UserError("--grid: no axis in '" + spec + "'");
        return new Grid(axes);
    }

    /** Every combination of values (axis → value), the last axis varying fastest; one empty point without axes. */
    List<Map<String, String>> points() {
        List<Map<String, String>> points = new ArrayList<>();
        points.add(new LinkedHashMap<>());
        for (Map.Entry<String, List<String>> axis : axes.entrySet()) {
            List<Map<String, String>> next = new ArrayList<>();
            for (Map<String, String> p : points) {
                for (String v : axis.getValue()) {
                    Map<String, String> q = new LinkedHashMap<>(p);
                    q.put(axis.getKey(), v);
                    next.add(q);
                }
            }
            points = next;
        }
        return points;
    }
}
