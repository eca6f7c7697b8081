package esdnative.cli.weights;

import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.model.sdxl.SdxlConversion;
import esdnative.model.sdxl.SdxlTensors;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.util.UserError;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code esd-native weights diff A B}: which tensors differ between two models, in any layouts (names matched
 * through the diffusers ↔ CompVis table), and by how much: the largest absolute difference and that divided by
 * the largest magnitude in A. How a user checks what an ESD run touched. SDXL models (folder or original single
 * file) by their four components, text_encoder_2 included.
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
    record Difference(String component, String name, double maxAbs, double relative, boolean equal) {}

    /** A model's tensors by component folder name, whatever its layout. */
    private interface Tensors {
        Collection<String> names(String component);
        long[] shape(String component, String name);
        float[] read(String component, String name);
    }

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        boolean xlA = StableDiffusionXL.isSdxl(a), xlB = StableDiffusionXL.isSdxl(b);
        if (xlA != xlB) throw new UserError((xlA ? a : b) + " is an SDXL model and " + (xlA ? b : a) + " is not: nothing to compare");
        if (xlA) {
            if (ema) throw new UserError("--ema: an SDXL model has no EMA copy");
            try (SdxlTensors ta = SdxlTensors.open(a); SdxlTensors tb = SdxlTensors.open(b)) {
                diff(out, SdxlConversion.COMPONENTS, sdxl(ta), sdxl(tb));
            }
            out.flush();
            return;
        }
        ModelWeights.Ema which = ema ? ModelWeights.Ema.WHERE_PRESENT : ModelWeights.Ema.OFF;
        try (ModelWeights wa = ModelWeights.open(a, which); ModelWeights wb = ModelWeights.open(b, which)) {
            if (wa.usesEma()) spec.commandLine().getErr().println("note: " + a + ": comparing its EMA UNet weights (model_ema.*)");
            if (wb.usesEma()) spec.commandLine().getErr().println("note: " + b + ": comparing its EMA UNet weights (model_ema.*)");
            diff(out, Arrays.stream(Component.values()).map(Component::folder).toList(), sd(wa), sd(wb));
        }
        out.flush();
    }

    private static Tensors sd(ModelWeights w) {
        return new Tensors() {
            public Collection<String> names(String c) { return w.names(component(c)); }
            public long[] shape(String c, String n) { return w.shape(component(c), n); }
            public float[] read(String c, String n) { return w.readFloats(component(c), n); }
        };
    }

    private static Component component(String folder) {
        return Arrays.stream(Component.values()).filter(c -> c.folder().equals(folder)).findFirst().orElseThrow();
    }

    private static Tensors sdxl(SdxlTensors t) {
        return new Tensors() {
            public Collection<String> names(String c) { return t.names(c); }
            public long[] shape(String c, String n) { return Arrays.stream(t.shapes(c, List.of(n)).get(n)).asLongStream().toArray(); }
            public float[] read(String c, String n) { return t.read(c, n); }
        };
    }

    private void diff(PrintWriter out, List<String> components, Tensors wa, Tensors wb) {
        Map<String, int[]> changedPerComponent = new LinkedHashMap<>();
        List<String> onlyA = new ArrayList<>(), onlyB = new ArrayList<>(), reshaped = new ArrayList<>();
        int compared = 0, changed = 0;
        for (String c : components) {
            Set<String> names = new LinkedHashSet<>(wa.names(c));
            names.addAll(wb.names(c));
            Set<String> inA = new HashSet<>(wa.names(c)), inB = new HashSet<>(wb.names(c));
            for (String name : names) {
                String label = c + "/" + name;
                if (!inB.contains(name)) { onlyA.add(label); continue; }
                if (!inA.contains(name)) { onlyB.add(label); continue; }
                if (!Arrays.equals(wa.shape(c, name), wb.shape(c, name))) {
                    reshaped.add(label + " " + Arrays.toString(wa.shape(c, name)) + " vs " + Arrays.toString(wb.shape(c, name)));
                    continue;
                }
                Difference d = compare(c, name, wa.read(c, name), wb.read(c, name));
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
            changedPerComponent.forEach((c, n) -> parts.add(c + " " + n[0]));
            summary.append(" (").append(String.join(", ", parts)).append(")");
        }
        if (!onlyA.isEmpty() || !onlyB.isEmpty()) summary.append("; ").append(onlyA.size()).append(" only in A, ").append(onlyB.size()).append(" only in B");
        if (!reshaped.isEmpty()) summary.append("; ").append(reshaped.size()).append(" with different shapes");
        out.println(summary);
    }

    /** Elements are equal when their floats are (NaN equals NaN); a NaN against a number counts as infinitely far. */
    static Difference compare(String c, String name, float[] x, float[] y) {
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
