package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.Layout;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.TensorEntries;
import esdnative.util.UserError;
import esdnative.io.AtomicOutput;
import esdnative.io.DType;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.io.TensorSource;
import esdnative.lora.LoraExtraction;
import esdnative.lora.LoraSettings;
import esdnative.lora.LoraWriter;
import esdnative.model.StableDiffusion;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * Writes an ESD result. Untouched tensors are copied byte for byte from the source checkpoint (dtype kept), read
 * through the handle the model was loaded from (open until the model is closed); the trained ones are written in
 * their source dtype. Everything is written under a temporary name and renamed into place at the end, so a failed or
 * interrupted write leaves no partial output.
 */
public final class EsdOutput {
    private final Backend be;
    private final StableDiffusion model;
    private final TrainableSubset subset;
    private final Map<String, String> metadata;
    private Path configDir, tokenizerDir;

    public EsdOutput(Backend be, StableDiffusion model, TrainableSubset subset, Map<String, String> metadata) {
        this.be = be;
        this.model = model;
        this.subset = subset;
        this.metadata = metadata;
    }

    /**
     * Where a single file's pipeline folder output takes its configs and tokenizer from: the {@code --config} and
     * {@code --tokenizer} folders it was loaded with (either may be null).
     */
    public EsdOutput pipelineFilesFrom(Path configDir, Path tokenizerDir) {
        this.configDir = configDir;
        this.tokenizerDir = tokenizerDir;
        return this;
    }

    /**
     * Fails early (before any training) when the output exists and may not be replaced, or a file format would be
     * written under a PyTorch checkpoint's name (outputs are safetensors, never pickles).
     */
    public static void checkWritable(Path out, Layout format, boolean overwrite) {
        if (format != Layout.DIFFUSERS && out.getFileName().toString().matches("(?i).*\\.(ckpt|pt|pth|bin)")) {
            throw new UserError(out + ": results are written as safetensors; name the file .safetensors");
        }
        checkWritable(out, overwrite);
    }

    /**
     * Fails early (before any training) when the output exists and may not be replaced, or is a folder that is not a
     * model folder (replacing it would delete whatever it holds).
     */
    public static void checkWritable(Path out, boolean overwrite) {
        if (Files.exists(out) && !overwrite) throw new AtomicOutput.Exists(null, out);
        AtomicOutput.checkReplaceable(out, null);
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError("folder " + parent + " does not exist");
    }

    /**
     * Writes the result in an output format ({@link Layout#formatId()} set); an existing {@code out} is replaced only
     * when {@code overwrite}.
     */
    public void write(Path out, Layout format, boolean overwrite) {
        switch (format) {
            case TRAINED_ONLY -> writeAtomically(out, overwrite, tmp -> SafetensorsWriter.write(tmp, trainedOnly(), metadata));
            case SINGLE_FILE -> writeAtomically(out, overwrite, tmp -> SafetensorsWriter.write(tmp, singleFile(), metadata));
            case DIFFUSERS -> writeAtomically(out, overwrite, this::writeDiffusersFolder);
            case LORA -> throw new IllegalArgumentException("a LoRA output needs its settings: call writeLora");
            default -> throw new IllegalArgumentException(format + " is not an output format");
        }
    }

    /** The trained tensors' change from the frozen model as a LoRA file; returns the log's lines (residuals). */
    public List<String> writeLora(Path out, LoraSettings settings) {
        LoraExtraction.Result lora = LoraExtraction.extract(LoraExtraction.Pair.of(be, model.unetWeights(), subset.trained()), settings);
        LoraWriter.write(out, lora, model.checkpoint().file(Component.UNET), metadata);
        return LoraWriter.report(lora);
    }

    // ---- formats -------------------------------------------------------------------------------------------

    private SequencedMap<String, Entry> trainedOnly() {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        UnetSource src = new UnetSource(model);
        subset.trained().asMap().forEach((name, t) -> entries.put(name, TensorEntries.of(be, t, src.dtype(name))));
        return entries;
    }

    /**
     * The input's single file with the trained UNet tensors replaced (a checkpoint's EMA copies of the UNet dropped,
     * so that no loader takes an unerased UNet; its decay and num_updates scalars kept), or a diffusers input
     * converted. Untouched tensors keep their dtype and values.
     */
    private SequencedMap<String, Entry> singleFile() {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        ModelWeights w = model.checkpoint();
        CompVisNames table = CompVisNames.of(w.topology());
        if (w.isSingleFile()) {
            TensorSource f = w.singleFile();
            for (String name : f.names()) {
                if (ModelWeights.isEmaWeight(name)) continue;
                CompVisNames.DiffusersName d = table.toDiffusers(name);
                if (d == null) {   // schedule buffers and other extras, as they were
                    entries.put(name, TensorEntries.of(f, name, f.shape(name), null));
                    continue;
                }
                ModelWeights.Source s = w.source(d.component(), d.name());
                long[] shape = s.file().shape(s.name());
                entries.put(name, isTrained(d.component(), d.name()) ? trainedEntry(d.name(), s.file().dtype(s.name()), shape)
                        : TensorEntries.of(s.file(), s.name(), shape, null));
            }
            return entries;
        }
        for (Component c : w.components()) {
            if (c == Component.TEXT_ENCODER && w.openClipText()) {   // SD 2.x: OpenCLIP layout, as it loads
                entries.putAll(TensorEntries.openClipText(w, null));
                continue;
            }
            for (String name : w.names(c)) {
                String compVis = table.toCompVis(c, name);
                if (compVis == null) continue;   // e.g. text_model.embeddings.position_ids, a buffer
                long[] shape = CompVisNames.compVisShape(compVis, w.shape(c, name));
                ModelWeights.Source s = w.source(c, name);
                entries.put(compVis, isTrained(c, name) ? trainedEntry(name, w.dtype(c, name), shape)
                        : TensorEntries.of(s.file(), s.name(), shape, null));
            }
        }
        return entries;
    }

    private boolean isTrained(Component c, String diffusersName) {
        return c == Component.UNET && subset.trained().contains(diffusersName);
    }

    private void writeDiffusersFolder(Path tmp) throws IOException {
        Files.createDirectories(tmp.resolve("unet"));
        if (model.layout() == Layout.DIFFUSERS) {
            // every other component as it was, copied: never linked, so that editing the output cannot change the
            // input, and a symbolic link (a Hugging Face cache snapshot's files point into its blobs/) gives its target
            try (Stream<Path> all = Files.walk(model.source(), FileVisitOption.FOLLOW_LINKS)) {
                for (Path p : (Iterable<Path>) all::iterator) {
                    Path rel = model.source().relativize(p);
                    if (rel.toString().isEmpty() || rel.startsWith("unet")) continue;
                    Path target = tmp.resolve(rel.toString());
                    if (Files.isDirectory(p)) Files.createDirectories(target);
                    else DiffusersPipelineFiles.copy(p, target);
                }
            }
            DiffusersPipelineFiles.copy(model.source().resolve("unet/config.json"), tmp.resolve("unet/config.json"));
        } else {
            // a single file: the complete pipeline folder, the file's other components converted
            Files.writeString(tmp.resolve("unet/config.json"), DiffusersUNetConfig.json(model.unet()));
            DiffusersPipelineFiles.write(tmp, model, configDir, tokenizerDir);
        }
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        UnetSource src = new UnetSource(model);
        for (String name : model.unetWeights().asMap().keySet()) {
            entries.put(name, subset.trained().contains(name) ? trainedEntry(name, src.dtype(name), src.shape(name))
                    : src.untouched(name));
        }
        SafetensorsWriter.write(tmp.resolve("unet/diffusion_pytorch_model.safetensors"), entries, metadata);
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    /** A trained tensor in its source dtype, with the source's shape, fetched from the backend while it is written. */
    private Entry trainedEntry(String diffusersName, DType dtype, long[] shape) {
        return TensorEntries.of(be, subset.trained().get(diffusersName), dtype, shape);
    }

    /** Writes through {@code body} under a temporary name, then swaps it into place. */
    private void writeAtomically(Path out, boolean overwrite, AtomicOutput.Body body) {
        AtomicOutput.write(out, null, overwrite, body);
    }
}
