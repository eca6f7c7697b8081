package esdnative.weights;

import esdnative.cli.UserError;
import esdnative.io.DType;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.weights.CompVisNames.Component;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * {@code esd-native weights convert IN OUT}: a diffusers folder ↔ a CompVis single file (.safetensors or .ckpt in,
 * .safetensors out), optionally changing the float type and taking a checkpoint's EMA UNet.
 */
@Command(name = "convert",
        description = "Convert between a diffusers pipeline folder and a CompVis/LDM single .safetensors file "
                + "(a .ckpt is read safely, never executed).")
public final class ConvertCommand implements Runnable {
    enum Target { compvis, diffusers }

    enum FloatType {
        keep(null), f32(DType.F32), f16(DType.F16), bf16(DType.BF16);

        final DType dtype;

        FloatType(DType dtype) { this.dtype = dtype; }
    }

    @Parameters(index = "0", paramLabel = "IN", description = "A diffusers pipeline folder, or a CompVis single file (.safetensors or .ckpt).")
    Path input;

    @Parameters(index = "1", paramLabel = "OUT", description = "A .safetensors file (--to compvis) or a folder (--to diffusers).")
    Path output;

    @Option(names = "--to", paramLabel = "LAYOUT",
            description = "compvis or diffusers (default: the other layout than IN's).")
    Target to;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "keep",
            description = "Float type to write: keep, f32, f16 or bf16 (round to nearest even). Default: ${DEFAULT-VALUE}.")
    FloatType dtype;

    @Option(names = "--ema", description = "Take the UNet from the checkpoint's model_ema weights.")
    boolean ema;

    @Option(names = "--config-from", paramLabel = "DIR",
            description = "--to diffusers: copy config.json, model_index.json, scheduler and tokenizer files from this diffusers folder.")
    Path configFrom;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        try (ModelWeights model = ModelWeights.open(input, ema)) {
            Target target = to != null ? to : model.isSingleFile() ? Target.diffusers : Target.compvis;
            if (target == Target.compvis) {
                if (!output.getFileName().toString().endsWith(".safetensors")) {
                    throw new UserError(output + ": a CompVis single file must be written as .safetensors");
                }
                CompVisNames table = CompVisNames.of(model.topology());
                SequencedMap<String, Entry> entries = new LinkedHashMap<>();
                for (Component c : model.components()) {
                    for (String name : model.names(c)) {
                        String compVis = table.toCompVis(c, name);
                        if (compVis == null) throw new UserError(input + ": " + c.folder() + " tensor " + name + " has no CompVis name");
                        entries.put(compVis, entry(model, c, name, CompVisNames.compVisShape(compVis, model.shape(c, name))));
                    }
                }
                SafetensorsWriter.write(output, entries, Map.of("format", "pt"));
                report(out, output, entries, model);
            } else {
                if (configFrom != null && !DiffusersFolder.isPipeline(configFrom)) {
                    throw new UserError(configFrom + ": --config-from is not a diffusers pipeline folder");
                }
                createFolder(output);
                for (Component c : model.components()) {
                    SequencedMap<String, Entry> entries = new LinkedHashMap<>();
                    for (String name : model.names(c)) entries.put(name, entry(model, c, name, model.shape(c, name)));
                    Path dir = createFolder(output.resolve(c.folder()));
                    Path file = dir.resolve(c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors");
                    SafetensorsWriter.write(file, entries, Map.of("format", "pt"));
                    report(out, file, entries, null);
                }
                if (configFrom != null) {
                    copyConfigs(configFrom, output);
                } else {
                    out.println("note: no config.json files written; pass --config-from DIR (a diffusers folder of the same architecture)");
                }
                if (!model.unmapped().isEmpty()) out.println("dropped " + model.unmapped().size() + " tensors that are no model weight (e.g. " + model.unmapped().getFirst() + ")");
            }
        }
        out.flush();
    }

    /** One tensor to write: a zero-copy view when the dtype stays, else converted floats. */
    private Entry entry(ModelWeights model, Component c, String name, long[] shape) {
        ModelWeights.Source s = model.source(c, name);
        DType from = s.file().dtype(s.name());
        DType target = dtype.dtype == null || !from.isFloating() ? from : dtype.dtype;
        if (target == from && s.file() instanceof SafetensorsFile f) return Entry.raw(from, shape, f.raw(s.name()));
        float[] values = s.file().readFloats(s.name());
        if (target.isFloating()) return Entry.floats(target, shape, values);
        // integer tensors (e.g. position_ids) from a checkpoint: exact as long as floats held them exactly
        ByteBuffer b = ByteBuffer.allocate(values.length * target.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            if (Math.abs(v) >= 0x1p24f) throw new UserError(input + ": integer tensor " + s.name() + " has values too large to convert");
            if (target == DType.I64) b.putLong((long) v); else b.putInt((int) v);
        }
        return Entry.raw(target, shape, MemorySegment.ofArray(b.array()));
    }

    private void report(PrintWriter out, Path file, SequencedMap<String, Entry> entries, ModelWeights model) {
        long bytes = 0;
        for (Entry e : entries.values()) {
            long n = e.dtype().bytes();
            for (long d : e.shape()) n *= d;
            bytes += n;
        }
        out.printf(Locale.ROOT, "wrote %s: %d tensors, %,d bytes of data%n", file, entries.size(), bytes);
        if (model != null && !model.unmapped().isEmpty()) {
            out.println("dropped " + model.unmapped().size() + " tensors that are no model weight (e.g. " + model.unmapped().getFirst() + ")");
        }
    }

    private static Path createFolder(Path dir) {
        try {
            return Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UserError(dir + ": cannot create folder: " + e.getMessage(), e);
        }
    }

    /** Copies the small text files of a diffusers folder (configs, scheduler, tokenizer), never weights. */
    private static void copyConfigs(Path from, Path to) {
        List<Path> files;
        try (Stream<Path> s = Files.walk(from, 2)) {
            files = s.filter(Files::isRegularFile).filter(p -> {
                String n = p.getFileName().toString();
                return n.endsWith(".json") || n.endsWith(".txt");
            }).toList();
        } catch (IOException e) {
            throw new UserError(from + ": cannot list folder: " + e.getMessage(), e);
        }
        for (Path f : files) {
            Path target = to.resolve(from.relativize(f).toString());
            try {
                Files.createDirectories(target.getParent());
                Files.copy(f, target, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                throw new UserError(target + ": cannot copy config: " + e.getMessage(), e);
            }
        }
    }
}
