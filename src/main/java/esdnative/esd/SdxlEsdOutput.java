package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.DiffusersFolder;
import esdnative.checkpoint.Layout;
import esdnative.checkpoint.TensorEntries;
import esdnative.io.AtomicOutput;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.lora.LoraExtraction;
import esdnative.lora.LoraSettings;
import esdnative.lora.LoraWriter;
import esdnative.model.sdxl.SdxlConversion;
import esdnative.model.sdxl.SdxlSingleFileNames;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.util.UserError;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

/**
 * Writes an ESD result of an SDXL model in its input's layout: a diffusers folder as a copy of the input folder with
 * the UNet's weights file rewritten, a single file as the input file with the trained UNet tensors replaced, or the
 * trained tensors alone. Untouched tensors are copied byte for byte (dtype kept), trained ones are written in their
 * source dtype; the write is atomic. A folder is also written as a single file (converted as diffusers' own script
 * does), and a single file as a folder (converted back, with the configs and tokenizers of the folder it was loaded
 * with). Or the change as a LoRA.
 */
public final class SdxlEsdOutput {
    private static final String UNET_FILE = "unet/diffusion_pytorch_model.safetensors";

    private final Backend be;
    private final StableDiffusionXL model;
    private final TrainableSubset subset;
    private final Map<String, String> metadata;
    private Path configDir;

    public SdxlEsdOutput(Backend be, StableDiffusionXL model, TrainableSubset subset, Map<String, String> metadata) {
        this.be = be;
        this.model = model;
        this.subset = subset;
        this.metadata = metadata;
    }

    /**
     * The diffusers SDXL folder whose configs, scheduler and tokenizers a single file's folder output takes (the one
     * its model was loaded with).
     */
    public SdxlEsdOutput configsFrom(Path configDir) {
        this.configDir = configDir;
        return this;
    }

    /** Refuses, before any training, a format this writer cannot give for {@code model} (a folder or a single file). */
    public static void checkSupported(Path model, Layout format) {
        switch (format) {
            case LORA, TRAINED_ONLY -> { }
            case SINGLE_FILE -> { }
            case DIFFUSERS -> {
                if (Files.isDirectory(model) && !Files.isRegularFile(model.resolve(UNET_FILE))) {
                    throw new UserError(model + ": the UNet is not in " + UNET_FILE + " (sharded or .bin weights); write trained-only");
                }
            }
            default -> throw new IllegalArgumentException(format + " is not an output format");
        }
    }

    /** Writes the result; an existing {@code out} is replaced only when {@code overwrite}. */
    public void write(Path out, Layout format, boolean overwrite) {
        checkSupported(model.source(), format);
        AtomicOutput.write(out, null, overwrite, tmp -> {
            switch (format) {
                case TRAINED_ONLY -> writeTrainedOnly(tmp);
                case SINGLE_FILE -> {
                    if (Files.isDirectory(model.source())) writeSingleFileFromFolder(tmp);
                    else writeSingleFile(tmp);
                }
                case DIFFUSERS -> {
                    if (Files.isDirectory(model.source())) writeFolder(tmp);
                    else writeFolderFromSingleFile(tmp);
                }
                default -> throw new IllegalArgumentException(format + ": a LoRA output needs its settings (writeLora)");
            }
        });
    }

    /** The trained tensors' change from the frozen model as a LoRA file (kohya's SDXL names); the log's lines. */
    public List<String> writeLora(Path out, LoraSettings settings) {
        LoraExtraction.Result lora = LoraExtraction.extract(LoraExtraction.Pair.of(be, model.unetWeights(), subset.trained()), settings);
        LoraWriter.write(out, lora, model.source(), metadata);
        return LoraWriter.report(lora);
    }

    private void writeTrainedOnly(Path tmp) {
        Path source = Files.isDirectory(model.source()) ? model.source().resolve(UNET_FILE) : model.source();
        Map<String, String> keys = Files.isDirectory(model.source()) ? null : singleFileKeys();
        try (SafetensorsFile f = SafetensorsFile.open(source)) {
            SequencedMap<String, Entry> entries = new LinkedHashMap<>();
            subset.trained().asMap().forEach((name, t) -> {
                String key = keys == null ? name : keys.get(name);
                entries.put(name, TensorEntries.of(be, t, f.dtype(key), f.shape(key)));
            });
            SafetensorsWriter.write(tmp, entries, metadata);
        }
    }

    /** The input file, every tensor as it was but the trained UNet ones. */
    private void writeSingleFile(Path tmp) {
        Map<String, String> trainedByKey = new HashMap<>();
        singleFileKeys().forEach((name, key) -> trainedByKey.put(key, name));
        try (SafetensorsFile f = SafetensorsFile.open(model.source())) {
            SafetensorsWriter.write(tmp, replaced(f, trainedByKey), metadata);
        }
    }

    /**
     * A folder's model in the original SDXL layout (README-sdxl.md §2): every tensor of unet/, vae/, text_encoder/ and
     * text_encoder_2/ under its single-file key, bytes as they were (the VAE's attention projections as 1×1
     * convolutions, text_encoder_2's q/k/v rows fused into in_proj, its projection transposed), the trained UNet
     * tensors replaced.
     */
    private void writeSingleFileFromFolder(Path tmp) {
        SdxlSingleFileNames names = new SdxlSingleFileNames(StableDiffusionXL.topology(model.unet(), model.vae().config()));
        Map<String, SafetensorsFile> files = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            for (String c : SdxlConversion.COMPONENTS) files.put(c, SafetensorsFile.open(model.source().resolve(SdxlConversion.weightsFile(c))));
            SequencedMap<String, Entry> entries = SdxlConversion.toSingleFile(files, names, arena);
            SafetensorsFile unet = files.get("unet");
            subset.trained().asMap().forEach((name, t) -> {   // UNet tensors: never fused nor transposed
                String key = names.place("unet", name).key();
                entries.put(key, TensorEntries.of(be, t, unet.dtype(name), CompVisNames.compVisShape(key, unet.shape(name))));
            });
            SafetensorsWriter.write(tmp, entries, metadata);
        } finally {
            files.values().forEach(SafetensorsFile::close);
        }
    }

    /**
     * A single file's model as a diffusers folder: its tensors by component as {@link SdxlConversion#toFolder} gives
     * them (bytes as they were; q/k/v split from in_proj, the projection transposed back, the VAE's 1×1 convolutions as
     * linears), the trained UNet tensors replaced, and {@link #configsFrom}'s configs, scheduler, tokenizers and
     * model_index.json. Keys of no component (position_ids, logit_scale) are left out, as diffusers' loader drops them.
     */
    private void writeFolderFromSingleFile(Path tmp) throws IOException {
        if (configDir == null) throw new IllegalStateException("an SDXL single file's folder needs the configs it was loaded with");
        SdxlSingleFileNames names = new SdxlSingleFileNames(StableDiffusionXL.topology(model.unet(), model.vae().config()));
        Files.createDirectory(tmp);
        try (SafetensorsFile f = SafetensorsFile.open(model.source())) {
            Map<String, SequencedMap<String, Entry>> byComponent = SdxlConversion.toFolder(f, names, new ArrayList<>());
            SequencedMap<String, Entry> unet = byComponent.get("unet");
            subset.trained().asMap().forEach((name, t) -> {
                Entry source = unet.get(name);
                if (source == null) throw new IllegalStateException(f.path() + ": no UNet tensor " + name);
                unet.put(name, TensorEntries.of(be, t, source.dtype(), source.shape()));
            });
            for (var c : byComponent.entrySet()) {
                Path file = tmp.resolve(SdxlConversion.weightsFile(c.getKey()));
                Files.createDirectories(file.getParent());
                SafetensorsWriter.write(file, c.getValue(), c.getKey().equals("unet") ? metadata : Map.of("format", "pt"));
            }
        }
        DiffusersFolder.copyConfigs(configDir, tmp);
    }

    /** The input folder copied (never linked), its UNet weights file rewritten with the trained tensors. */
    private void writeFolder(Path tmp) throws IOException {
        Path src = model.source();
        try (Stream<Path> all = Files.walk(src, FileVisitOption.FOLLOW_LINKS)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                String rel = src.relativize(p).toString();
                if (rel.isEmpty() || rel.equals(UNET_FILE)) continue;
                Path target = tmp.resolve(rel);
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else DiffusersPipelineFiles.copy(p, target);
            }
        }
        Map<String, String> trainedByName = new HashMap<>();
        subset.trained().asMap().keySet().forEach(n -> trainedByName.put(n, n));
        try (SafetensorsFile f = SafetensorsFile.open(src.resolve(UNET_FILE))) {
            SafetensorsWriter.write(tmp.resolve(UNET_FILE), replaced(f, trainedByName), metadata);
        }
    }

    /** {@code f}'s tensors in order, those {@code trained} maps (file key → UNet name) replaced by the trained values. */
    private SequencedMap<String, Entry> replaced(SafetensorsFile f, Map<String, String> trained) {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        for (String key : f.names()) {
            String name = trained.get(key);
            entries.put(key, name == null ? Entry.raw(f.dtype(key), f.shape(key), f.raw(key))
                    : TensorEntries.of(be, subset.trained().get(name), f.dtype(key), f.shape(key)));
        }
        if (entries.size() < f.names().size() || trained.keySet().stream().anyMatch(k -> !entries.containsKey(k))) {
            throw new IllegalStateException(f.path() + ": a trained tensor's key is missing");
        }
        return entries;
    }

    /** The single-file key of every trained UNet tensor (CompVis names; SDXL's label_emb for add_embedding). */
    private Map<String, String> singleFileKeys() {
        SdxlSingleFileNames names = new SdxlSingleFileNames(CompVisNames.Topology.fromDiffusers(
                model.unetWeights().asMap().keySet(), List.of()));
        Map<String, String> keys = new HashMap<>();
        for (String name : subset.trained().asMap().keySet()) {
            SdxlSingleFileNames.Place p = names.place("unet", name);
            if (p == null || p.third() >= 0 || p.transposed()) throw new IllegalStateException("no single-file key for " + name);
            keys.put(name, p.key());
        }
        return keys;
    }
}
