package esdnative.cli.weights;

import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.CompVisNames.Component;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code esd-native weights diff A B}: which tensors differ between two models, in any layouts (names matched
 * through the diffusers ↔ CompVis table), and by how much: the largest absolute difference and that divided by
 * the largest magnitude in A. How a user checks what an ESD run touched.
 */
@Command(name = "diff",
        description = "Compare two models (diffusers folders, .safetensors or .ckpt single files, in any mix): "
                + "per tensor max |A-B| and max |A-B| / max |A|, and which tensors changed.")
public final class DiffCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "A", description = "The first model (e.g. the original).")
    Path a;

    @Parameters(index = "1", paramLabel = "B", description = "The second model (e.g. the ESD output).")
    Path b;

    @Option(names = "--all", description = "Also list the tensors that are equal.")
    boolean all;

    @Option(names = "--ema", description = "Compare a checkpoint's model_ema.* UNet copy where it has one, not its raw UNet weights (the default, as the loaders take them).")
    boolean ema;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** How one tensor compares: equal means every element has the same float value. */
    record Difference(Component component, String name, double maxAbs, double relative, boolean equal) {}

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        ModelWeights.Ema which = ema ? ModelWeights.Ema.WHERE_PRESENT : ModelWeights.Ema.OFF;
        try (ModelWeights wa = ModelWeights.open(a, which); ModelWeights wb = ModelWeights.open(b, which)) {
            if (wa.usesEma()) spec.commandLine().getErr().println("note: " + a + ": comparing its EMA UNet weights (model_ema.*)");
            if (wb.usesEma()) spec.commandLine().getErr().println("note: " + b + ": comparing its EMA UNet weights (model_ema.*)");
            Map<Component, int[]> changedPerComponent = new EnumMap<>(Component.class);
            List<String> onlyA = new ArrayList<>(), onlyB = new ArrayList<>(), reshaped = new ArrayList<>();
            int compared = 0, changed = 0;
            for (Component c : Component.values()) {
                Set<String> names = new LinkedHashSet<>(wa.names(c));
                names.addAll(wb.names(c));
                for (String name : names) {
                    String label = c.folder() + "/" + name;
                    if (!wb.names(c).contains(name)) { onlyA.add(label); continue; }
                    if (!wa.names(c).contains(name)) { onlyB.add(label); continue; }
                    if (!Arrays.equals(wa.shape(c, name), wb.shape(c, name))) {
                        reshaped.add(label + " " + Arrays.toString(wa.shape(c, name)) + " vs " + Arrays.toString(wb.shape(c, name)));
                        continue;
                    }
                    Difference d = compare(c, name, wa.readFloats(c, name), wb.readFloats(c, name));
                    compared++;
                    if (!d.equal()) {
                        changed++;
                        changedPerComponent.computeIfAbsent(c, k -> new int[1])[0]++;
                    }
                    if (!d.equal() || all) {
                        out.printf(Locale.ROOT, "%-9s %s  max_abs %.3e  rel %.3e%n", d.equal() ? "equal" : "changed",
                                label, d.maxAbs(), d.relative());
                    }
                }
            }
            for (String s : onlyA) out.println("only in A " + s);
            for (String s : onlyB) out.println("only in B " + s);
            for (String s : reshaped) out.println("shape     " + s);
            StringBuilder summary = new StringBuilder(String.format(Locale.ROOT, "%d of %d tensors changed", changed, compared));
            if (!changedPerComponent.isEmpty()) {
                List<String> parts = new ArrayList<>();
                changedPerComponent.forEach((c, n) -> parts.add(c.folder() + " " + n[0]));
                summary.append(" (").append(String.join(", ", parts)).append(")");
            }
            if (!onlyA.isEmpty() || !onlyB.isEmpty()) summary.append("; ").append(onlyA.size()).append(" only in A, ").append(onlyB.size()).append(" only in B");
            if (!reshaped.isEmpty()) summary.append("; ").append(reshaped.size()).append(" with different shapes");
            out.println(summary);
        }
        out.flush();
    }

    /** Elements are equal when their floats are (NaN equals NaN); a NaN against a number counts as infinitely far. */
    static Difference compare(Component c, String name, float[] x, float[] y) {
        double maxAbs = 0, maxA = 0;
        boolean equal = true;
        for (int i = 0; i < x.length; i++) {
            maxA = Math.max(maxA, Math.abs(x[i]));
            if (x[i] == y[i] || (Float.isNaN(x[i]) && Float.isNaN(y[i]))) continue;
            equal = false;
            double d = Math.abs((double) x[i] - y[i]);
            maxAbs = Math.max(maxAbs, Double.isNaN(d) ? Double.POSITIVE_INFINITY : d);
        }
        double relative = maxAbs == 0 ? 0 : maxA == 0 ? Double.POSITIVE_INFINITY : maxAbs / maxA;
        return new Difference(c, name, maxAbs, relative, equal);
    }
}
