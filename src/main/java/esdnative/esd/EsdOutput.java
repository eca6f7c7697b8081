package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.cli.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.io.TensorInfo;
import esdnative.model.StableDiffusion;
import esdnative.weights.CompVisNames;
import esdnative.weights.CompVisNames.Component;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * Writes an ESD result. Untouched tensors are copied byte for byte from the source checkpoint (dtype kept); the
 * trained ones are written in their source dtype. Everything is written under a temporary name and renamed into
 * place at the end, so a failed or interrupted write leaves no partial output.
 */
public final class EsdOutput {
    private final Backend be;
    private final StableDiffusion model;
    private final TrainableSubset subset;
    private final Map<String, String> metadata;

    public EsdOutput(Backend be, StableDiffusion model, TrainableSubset subset, Map<String, String> metadata) {
        this.be = be;
        this.model = model;
        this.subset = subset;
        this.metadata = metadata;
    }

    /** Fails early (before any training) when the output exists and may not be replaced. */
    public static void checkWritable(Path out, boolean overwrite) {
        if (Files.exists(out) && !overwrite) {
            throw new UserError("--output: " + out + " already exists (pass --overwrite to replace it)");
        }
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new UserError("--output: folder " + parent + " does not exist");
    }

    public void write(Path out, OutputFormat format) {
        switch (format) {
            case TRAINED_ONLY -> replaceAtomically(out, tmp -> SafetensorsWriter.write(tmp, trainedOnly(), metadata));
            case SINGLE_FILE -> replaceAtomically(out, tmp -> SafetensorsWriter.write(tmp, singleFile(), metadata));
            case DIFFUSERS -> replaceAtomically(out, this::writeDiffusersFolder);
        }
    }

    // ---- formats -------------------------------------------------------------------------------------------

    private SequencedMap<String, Entry> trainedOnly() {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        try (UnetSource src = UnetSource.open(model)) {
            subset.trained().asMap().forEach((name, t) ->
                    entries.put(name, Entry.floats(src.info(name).dtype(), t.shape(), be.toHost(t))));
        }
        return entries;
    }

    /** The input's single file with the trained UNet tensors replaced; or a diffusers input converted. */
    private SequencedMap<String, Entry> singleFile() {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        if (model.layout() == StableDiffusion.Layout.SINGLE_FILE) {
            // raw segments stay valid while the file is mapped, i.e. until write() returns: keep it open
            SafetensorsFile f = keepOpen(SafetensorsFile.open(model.source()));
            CompVisNames table = CompVisNames.of(CompVisNames.Topology.fromCompVis(f.names()));
            for (TensorInfo info : f.tensors()) {
                CompVisNames.DiffusersName d = table.toDiffusers(info.name());
                boolean trained = d != null && d.component() == Component.UNET && subset.trained().contains(d.name());
                entries.put(info.name(), trained ? trainedEntry(d.name(), info) : Entry.raw(info.dtype(), info.shape(), f.raw(info.name())));
            }
            return entries;
        }
        Path dir = model.source();
        List<SafetensorsFile> files = new ArrayList<>();
        Map<Component, SafetensorsFile> byComponent = new LinkedHashMap<>();
        for (Component c : Component.values()) {
            Path p = componentFile(dir.resolve(c.folder()), c == Component.TEXT_ENCODER ? "model" : "diffusion_pytorch_model");
            if (p != null) byComponent.put(c, keepOpen(SafetensorsFile.open(p)));
        }
        SafetensorsFile unet = byComponent.get(Component.UNET);
        SafetensorsFile vae = byComponent.get(Component.VAE);
        CompVisNames table = CompVisNames.of(CompVisNames.Topology.fromDiffusers(unet.names(), vae == null ? List.of() : vae.names()));
        byComponent.forEach((c, f) -> {
            for (TensorInfo info : f.tensors()) {
                String compVis = table.toCompVis(c, info.name());
                if (compVis == null) continue;   // e.g. text_model.embeddings.position_ids, a buffer
                long[] shape = CompVisNames.compVisShape(compVis, info.shape());
                boolean trained = c == Component.UNET && subset.trained().contains(info.name());
                entries.put(compVis, trained ? trainedEntry(info.name(), info)
                        : Entry.raw(info.dtype(), shape, f.raw(info.name())));
            }
        });
        return entries;
    }

    private void writeDiffusersFolder(Path tmp) throws IOException {
        Files.createDirectories(tmp.resolve("unet"));
        if (model.layout() == StableDiffusion.Layout.DIFFUSERS) {
            // every other component as it was: hard links where the file system allows, else copies
            try (Stream<Path> all = Files.walk(model.source())) {
                for (Path p : (Iterable<Path>) all::iterator) {
                    Path rel = model.source().relativize(p);
                    if (rel.toString().isEmpty() || rel.startsWith("unet")) continue;
                    Path target = tmp.resolve(rel.toString());
                    if (Files.isDirectory(p)) Files.createDirectories(target);
                    else linkOrCopy(p, target);
                }
            }
            Files.copy(model.source().resolve("unet/config.json"), tmp.resolve("unet/config.json"));
        } else {
            Files.writeString(tmp.resolve("unet/config.json"), DiffusersUNetConfig.json(model.unet()));
        }
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        try (UnetSource src = UnetSource.open(model)) {
            for (String name : model.unetWeights().asMap().keySet()) {
                TensorInfo info = src.info(name);
                entries.put(name, subset.trained().contains(name) ? trainedEntry(name, info)
                        : Entry.raw(info.dtype(), info.shape(), src.raw(name)));
            }
            SafetensorsWriter.write(tmp.resolve("unet/diffusion_pytorch_model.safetensors"), entries, metadata);
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    private Entry trainedEntry(String diffusersName, TensorInfo source) {
        return Entry.floats(source.dtype(), source.shape(), be.toHost(subset.trained().get(diffusersName)));
    }

    private final List<SafetensorsFile> open = new ArrayList<>();

    private SafetensorsFile keepOpen(SafetensorsFile f) {
        open.add(f);
        return f;
    }

    private static Path componentFile(Path dir, String stem) {
        for (String name : List.of(stem + ".safetensors", stem + ".fp16.safetensors")) {
            if (Files.isRegularFile(dir.resolve(name))) return dir.resolve(name);
        }
        return null;
    }

    private static void linkOrCopy(Path from, Path to) throws IOException {
        try {
            Files.createLink(to, from);
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(from, to);
        }
    }

    @FunctionalInterface
    private interface Writer {
        void write(Path tmp) throws IOException;
    }

    /** Writes into a temporary sibling, then swaps it into place (the old output is removed only after). */
    private void replaceAtomically(Path out, Writer writer) {
        Path target = out.toAbsolutePath();
        Path tmp = target.resolveSibling("." + target.getFileName() + ".partial");
        Path old = target.resolveSibling("." + target.getFileName() + ".old");
        try {
            deleteRecursively(tmp);
            writer.write(tmp);
            if (Files.exists(target)) Files.move(target, old, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            deleteRecursively(old);
        } catch (FileAlreadyExistsException e) {
            throw new UserError("--output: " + out + " appeared while writing; nothing was replaced", e);
        } catch (IOException e) {
            throw new UserError("--output: cannot write " + out + ": " + e.getMessage(), e);
        } finally {
            open.forEach(SafetensorsFile::close);
            open.clear();
            try {
                deleteRecursively(tmp);
            } catch (IOException ignored) {
                // the partial folder is hidden and replaced by the next run
            }
        }
    }

    private static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
