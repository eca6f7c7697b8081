package esdnative.cli.weights;

import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.DiffusersFolder;
import esdnative.checkpoint.Layout;
import esdnative.util.UserError;
import esdnative.model.sdxl.SdxlConversion;
import esdnative.model.sdxl.SdxlSingleFileNames;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.io.CkptFile;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorSource;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.CompVisNames.DiffusersName;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * {@code esd-native weights inspect PATH}: what a safetensors file, PyTorch checkpoint or diffusers folder holds —
 * its layout, metadata, every tensor (name, dtype, shape) and per-component tensor, parameter and byte counts
 * (SDXL: a folder or the original single file, with both text encoders).
 */
@Command(name = "inspect",
        description = "List the tensors of a safetensors or .ckpt file or a diffusers model folder, with per-component "
                + "parameter counts, bytes, metadata and layout (diffusers component or CompVis single file).")
public final class InspectCommand implements Runnable {
    @Parameters(paramLabel = "PATH", description = "A .safetensors or .ckpt file, a diffusers pipeline folder, or one component folder.")
    Path path;

    @Option(names = "--summary", description = "Print only the layout, metadata and counts, not every tensor.")
    boolean summary;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Counts for one row of the summary table. */
    private static final class Totals {
        long tensors, parameters, bytes;
        final TreeSet<String> dtypes = new TreeSet<>();

        void add(Entry e) {
            tensors++;
            parameters += e.numel();
            bytes += e.bytes();
            dtypes.add(e.dtype());
        }
    }

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        if (!Files.exists(path)) throw new UserError(path + ": no such file or folder");
        Map<String, Totals> rows = new LinkedHashMap<>();
        if (Files.isDirectory(path)) {
            if (StableDiffusionXL.isSdxlFolder(path)) {
                out.println(path + ": diffusers SDXL pipeline folder (" + String.join(", ", SdxlConversion.COMPONENTS) + ")");
                for (String c : SdxlConversion.COMPONENTS) {
                    Path file = path.resolve(SdxlConversion.weightsFile(c));
                    if (!Files.isRegularFile(file)) throw new UserError(file + " not found: an SDXL diffusers folder needs it");
                    inspectFile(out, file, rows, c);
                }
            } else if (DiffusersFolder.isPipeline(path)) {
                Map<Component, Path> components = DiffusersFolder.components(path);
                if (components.isEmpty()) throw new UserError(path + ": no unet, text_encoder or vae folder");
                out.println(path + ": diffusers pipeline folder (" + String.join(", ",
                        components.keySet().stream().map(Component::folder).toList()) + ")");
                components.values().forEach(file -> inspectFile(out, file, rows, null));
            } else {
                inspectFile(out, DiffusersFolder.weightsFile(path), rows, null);
            }
        } else {
            inspectFile(out, path, rows, null);
        }
        printTotals(out, rows);
        out.flush();
    }

    /** One tensor as the listing sees it, whatever the file format. */
    private record Entry(String name, String dtype, long[] shape, long numel, long bytes) {}

    /** Lists one file; its tensors count for {@code component}, or when null for the component their names say. */
    private void inspectFile(PrintWriter out, Path file, Map<String, Totals> rows, String component) {
        try (TensorSource f = TensorSource.open(file)) {
            Map<String, String> metadata = new LinkedHashMap<>();
            if (f instanceof SafetensorsFile s) metadata.putAll(s.metadata());
            if (f instanceof CkptFile c) c.extras().forEach((k, v) -> metadata.put(k, String.valueOf(v)));
            List<Entry> entries = f.names().stream().map(n -> {
                long[] shape = f.shape(n);
                long numel = 1;
                for (long d : shape) numel *= d;
                return new Entry(n, f.dtype(n).safetensorsName(), shape, numel, numel * f.dtype(n).bytes());
            }).toList();
            list(out, file, f instanceof SafetensorsFile ? "safetensors" : "PyTorch checkpoint", metadata, entries, rows, component);
        }
    }

    private void list(PrintWriter out, Path file, String format, Map<String, String> metadata, List<Entry> entries,
                      Map<String, Totals> rows, String component) {
        List<String> names = entries.stream().map(Entry::name).toList();
        Layout layout = Layout.of(names);
        boolean sdxl = layout == Layout.SINGLE_FILE && SdxlSingleFileNames.isSdxl(names);
        out.println(file + ": " + format + ", " + (sdxl ? "original SDXL single file" : layout.description()) + ", " + entries.size() + " tensors");
        out.println("  metadata: " + (metadata.isEmpty() ? "(none)" : format(metadata)));
        long ema = entries.stream().filter(e -> ModelWeights.isEmaWeight(e.name())).count();
        if (ema > 0) out.println("  EMA: " + ema + " model_ema.* UNet copies; train, generate, convert and diff use the raw UNet unless --ema");
        if (!summary) {
            int width = names.stream().mapToInt(String::length).max().orElse(0);
            for (Entry e : entries) {
                out.printf(Locale.ROOT, "  %-" + width + "s  %-4s %s%n", e.name(), e.dtype(), Arrays.toString(e.shape()));
            }
        }
        CompVisNames.Topology topology = layout == Layout.SINGLE_FILE ? CompVisNames.Topology.fromCompVis(names) : null;
        CompVisNames table = topology == null ? null : CompVisNames.of(topology);
        SdxlSingleFileNames sdxlNames = sdxl ? new SdxlSingleFileNames(topology) : null;
        for (Entry e : entries) {
            String row;
            if (component != null) {
                row = component;
            } else if (sdxlNames != null) {
                List<SdxlSingleFileNames.Named> d = sdxlNames.toDiffusers(e.name());
                row = d.isEmpty() ? "other" : d.getFirst().component();
            } else if (table != null) {
                DiffusersName d = table.toDiffusers(e.name());
                row = d == null ? "other" : d.component().folder();
            } else {
                row = layout.component() == null ? "unknown" : layout.component().folder();
            }
            rows.computeIfAbsent(row, k -> new Totals()).add(e);
        }
    }

    private static String format(Map<String, String> metadata) {
        StringBuilder b = new StringBuilder();
        metadata.forEach((k, v) -> b.append(b.isEmpty() ? "" : ", ").append(k).append('=')
                .append(v.length() > 200 ? v.substring(0, 200) + "... (" + v.length() + " chars)" : v));
        return b.toString().replace('\n', ' ');
    }

    private static void printTotals(PrintWriter out, Map<String, Totals> rows) {
        // stable order: the three SD components (and SDXL's second text encoder), then anything else
        Map<String, Totals> ordered = new LinkedHashMap<>();
        for (Component c : Component.values()) {
            if (rows.containsKey(c.folder())) ordered.put(c.folder(), rows.get(c.folder()));
        }
        if (rows.containsKey("text_encoder_2")) ordered.put("text_encoder_2", rows.get("text_encoder_2"));   // SDXL
        rows.forEach(ordered::putIfAbsent);
        Totals all = new Totals();
        out.println();
        out.printf(Locale.ROOT, "%-14s %8s %15s %16s  %s%n", "component", "tensors", "parameters", "bytes", "dtypes");
        ordered.forEach((name, t) -> {
            printRow(out, name, t);
            all.tensors += t.tensors;
            all.parameters += t.parameters;
            all.bytes += t.bytes;
            all.dtypes.addAll(t.dtypes);
        });
        printRow(out, "total", all);
    }

    private static void printRow(PrintWriter out, String name, Totals t) {
        out.printf(Locale.ROOT, "%-14s %8d %,15d %,16d  %s%n", name, t.tensors, t.parameters, t.bytes,
                String.join(" ", t.dtypes));
    }
}
