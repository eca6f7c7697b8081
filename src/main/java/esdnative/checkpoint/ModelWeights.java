package esdnative.checkpoint;

import esdnative.util.UserError;
import esdnative.io.DType;
import esdnative.io.Json;
import esdnative.io.TensorSource;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.CompVisNames.DiffusersName;
import esdnative.checkpoint.CompVisNames.Topology;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;

/**
 * A Stable Diffusion model's weights addressed by diffusers component and name, whatever the source: a diffusers
 * pipeline folder (one safetensors file per component, by {@link DiffusersFolder}'s rule) or a CompVis single file
 * (.safetensors or .ckpt), whose names go through {@link CompVisNames}. Every layout is read through here. Shapes are given in diffusers layout. A checkpoint's UNet is its raw weights, as
 * the reference loaders take it (diffusers' single-file loader: {@code extract_ema=False}; CompVis' and A1111's
 * {@code v1-inference.yaml}: {@code use_ema: False}); its {@code model_ema.*} copy (LDM's EMA, as in
 * {@code sd-v1-4-full-ema.ckpt}) replaces them only with {@link Ema#REQUIRE}.
 */
public final class ModelWeights implements AutoCloseable {
    /** Which UNet weights to take from a checkpoint that holds an EMA copy. */
    public enum Ema {
        /** the raw weights (the default of every reference loader) */
        OFF,
        /** the EMA copy ({@code --ema}); an error when the file has no EMA weights */
        REQUIRE,
        /** the EMA copy when the file has EMA weights, else the raw weights ({@code weights diff --ema}) */
        WHERE_PRESENT
    }

    /**
     * Where one diffusers tensor comes from: a file, the tensor's name there, its CompVis name if any, and which
     * third of dim 0 it is of a fused OpenCLIP q/k/v projection (0, 1, 2; -1: the whole tensor).
     */
    public record Source(TensorSource file, String name, String compVisName, int third) {
        public Source(TensorSource file, String name, String compVisName) {
            this(file, name, compVisName, -1);
        }
    }

    private final Path path;
    private final Layout layout;
    private final Topology topology;
    private final List<TensorSource> files;
    private final Map<Component, SequencedMap<String, Source>> tensors;
    private final List<String> unmapped;
    private final boolean usesEma;
    private final boolean openClipText;

    private ModelWeights(Path path, Layout layout, Topology topology, List<TensorSource> files,
                         Map<Component, SequencedMap<String, Source>> tensors, List<String> unmapped, boolean usesEma,
                         boolean openClipText) {
        this.path = path;
        this.layout = layout;
        this.topology = topology;
        this.files = files;
        this.tensors = tensors;
        this.unmapped = unmapped;
        this.usesEma = usesEma;
        this.openClipText = openClipText;
    }

    /** Opens a diffusers folder or a CompVis single file. */
    public static ModelWeights open(Path path, Ema ema) {
        if (!Files.exists(path)) throw new UserError(path + ": no such file or folder");
        return Files.isDirectory(path) ? openFolder(path, ema) : openSingleFile(path, ema);
    }

    private static ModelWeights openFolder(Path dir, Ema ema) {
        if (ema == Ema.REQUIRE) throw new UserError(dir + ": --ema needs a CompVis checkpoint with model_ema weights, not a diffusers folder");
        if (!DiffusersFolder.isPipeline(dir)) throw new UserError(dir + ": not a diffusers pipeline folder (no model_index.json, unet/, text_encoder/ or vae/)");
        List<TensorSource> files = new ArrayList<>();
        Map<Component, SequencedMap<String, Source>> tensors = new EnumMap<>(Component.class);
        try {
            for (var e : DiffusersFolder.components(dir).entrySet()) {
                TensorSource f = TensorSource.open(e.getValue());
                files.add(f);
                SequencedMap<String, Source> names = new LinkedHashMap<>();
                for (String n : f.names()) names.put(n, new Source(f, n, null));
                tensors.put(e.getKey(), names);
            }
            Topology topology = Topology.fromDiffusers(namesOf(tensors, Component.UNET), namesOf(tensors, Component.VAE));
            return new ModelWeights(dir, Layout.DIFFUSERS, topology, files, tensors, List.of(), false, isSd2TextEncoder(dir, tensors));
        } catch (RuntimeException e) {
            files.forEach(TensorSource::close);
            throw e;
        }
    }

    private static ModelWeights openSingleFile(Path file, Ema ema) {
        TensorSource f = TensorSource.open(file);
        try {
            Layout layout = Layout.of(f.names());
            if (layout != Layout.SINGLE_FILE) {
                throw new UserError(file + ": not a CompVis single file (" + layout.description()
                        + "); give the diffusers pipeline folder instead");
            }
            Topology topology = Topology.fromCompVis(f.names());
            CompVisNames table = CompVisNames.of(topology);
            boolean hasEma = f.names().stream().anyMatch(ModelWeights::isEmaWeight);
            boolean useEma = ema == Ema.REQUIRE || (ema == Ema.WHERE_PRESENT && hasEma);
            if (useEma && !hasEma) {
                throw new UserError(file + ": --ema: the file has no model_ema.* UNet weights");
            }
            Map<Component, SequencedMap<String, Source>> tensors = new EnumMap<>(Component.class);
            Set<String> used = new HashSet<>();
            boolean openClip = OpenClipNames.isOpenClip(f.names());
            int textLayers = OpenClipNames.diffusersLayers(f.names());
            for (String n : f.names()) {
                List<String> texts = openClip ? OpenClipNames.toDiffusers(n, textLayers) : List.of();
                for (int i = 0; i < texts.size(); i++) {   // SD 2.x text encoder: one or three (fused q/k/v) tensors
                    tensors.computeIfAbsent(Component.TEXT_ENCODER, c -> new LinkedHashMap<>())
                            .put(texts.get(i), new Source(f, n, n, texts.size() == 3 ? i : -1));
                    used.add(n);
                }
                DiffusersName d = table.toDiffusers(n);
                if (d == null) continue;
                String sourceName = n;
                if (useEma && d.component() == Component.UNET) {
                    sourceName = emaName(n);
                    if (!f.names().contains(sourceName)) {
                        throw new UserError(file + ": the EMA weights lack " + sourceName + " (the copy of " + n + "); leave out --ema to use the raw UNet");
                    }
                }
                tensors.computeIfAbsent(d.component(), c -> new LinkedHashMap<>()).put(d.name(), new Source(f, sourceName, n));
                used.add(sourceName);
            }
            List<String> unmapped = f.names().stream().filter(n -> !used.contains(n)).toList();
            return new ModelWeights(file, layout, topology, List.of(f), tensors, unmapped, useEma, openClip);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /**
     * A folder's text encoder is SD 2.x's OpenCLIP tower if its config says gelu (CLIP ViT-L, SD1's, uses quick_gelu)
     * or, without a config, if it has SD 2.x's 23 layers (diffusers' own test).
     */
    private static boolean isSd2TextEncoder(Path dir, Map<Component, SequencedMap<String, Source>> tensors) {
        Path config = dir.resolve("text_encoder/config.json");
        if (Files.isRegularFile(config)) return Json.tree(config).path("hidden_act").asText("").equals("gelu");
        return namesOf(tensors, Component.TEXT_ENCODER).contains("text_model.encoder.layers.22.layer_norm2.bias");
    }

    private static final String EMA_PREFIX = "model_ema.";

    /** LDM's EMA key of a UNet tensor: "model_ema." + the key after "model.", without its dots. */
    public static String emaName(String compVisUnetName) {
        return EMA_PREFIX + compVisUnetName.substring("model.".length()).replace(".", "");
    }

    /**
     * True if a tensor is one of LDM's EMA copies of a UNet weight; false for the EMA's two bookkeeping scalars
     * ({@code model_ema.decay}, {@code model_ema.num_updates}), which EMA-pruned checkpoints often keep alone.
     */
    public static boolean isEmaWeight(String name) { return name.startsWith(EMA_PREFIX) && !EMA_SCALARS.contains(name); }

    private static final Set<String> EMA_SCALARS = Set.of(EMA_PREFIX + "decay", EMA_PREFIX + "num_updates");

    private static Set<String> namesOf(Map<Component, SequencedMap<String, Source>> tensors, Component c) {
        return tensors.containsKey(c) ? tensors.get(c).keySet() : Set.of();
    }

    public Path path() { return path; }

    /** True if the UNet weights are a checkpoint's EMA copy. */
    public boolean usesEma() { return usesEma; }

    /**
     * True if the text encoder is SD 2.x's OpenCLIP tower: a single file's {@code cond_stage_model.model.*}, or a
     * folder's SD 2.x encoder, which a single file must hold in that layout ({@link OpenClipNames}).
     */
    public boolean openClipText() { return openClipText; }

    /** {@link Layout#DIFFUSERS} for a folder, {@link Layout#SINGLE_FILE} for a .safetensors or .ckpt single file. */
    public Layout layout() { return layout; }

    /** True if the weights came from a CompVis single file. */
    public boolean isSingleFile() { return layout == Layout.SINGLE_FILE; }

    /** The file a component's weights are read from: its file in a folder, else the single file; null if absent. */
    public Path file(Component c) {
        if (!tensors.containsKey(c)) return null;
        if (isSingleFile()) return path;
        return files.stream().filter(f -> f.path().getParent().getFileName().toString().equals(c.folder()))
                .findFirst().orElseThrow().path();
    }

    /** The single file the weights came from (a UserError for a folder). */
    public TensorSource singleFile() {
        if (!isSingleFile()) throw new UserError(path + ": a diffusers folder, not a single file");
        return files.getFirst();
    }

    /** The block layout the names were read with. */
    public Topology topology() { return topology; }

    /** The components present. */
    public Set<Component> components() { return tensors.keySet(); }

    /** A component's diffusers tensor names, in source order (empty if absent). */
    public Set<String> names(Component c) { return namesOf(tensors, c); }

    /** Source tensors left unused: no model weight in the name table (unused EMA copies, schedules, ...). */
    public List<String> unmapped() { return unmapped; }

    /** Where a tensor comes from. */
    public Source source(Component c, String name) {
        Source s = tensors.containsKey(c) ? tensors.get(c).get(name) : null;
        if (s == null) throw new UserError(path + ": no " + c.folder() + " tensor \"" + name + "\"");
        return s;
    }

    public DType dtype(Component c, String name) {
        Source s = source(c, name);
        return s.file().dtype(s.name());
    }

    /** The shape in diffusers layout. */
    public long[] shape(Component c, String name) {
        Source s = source(c, name);
        long[] shape = s.file().shape(s.name());
        if (s.third() >= 0) {
            shape = shape.clone();
            shape[0] /= 3;
            return shape;
        }
        return s.compVisName() == null ? shape : CompVisNames.diffusersShape(s.compVisName(), shape);
    }

    /** A component's shapes as {@code Weights.allocate} takes them, in source order. */
    public SequencedMap<String, int[]> shapes(Component c) {
        SequencedMap<String, int[]> out = new LinkedHashMap<>();
        for (String n : names(c)) {
            long[] s = shape(c, n);
            int[] i = new int[s.length];
            for (int d = 0; d < s.length; d++) i[d] = Math.toIntExact(s[d]);
            out.put(n, i);
        }
        return out;
    }

    /** The tensor's values as float32, row-major (a reshape does not move elements). */
    public float[] readFloats(Component c, String name) {
        Source s = source(c, name);
        float[] all = s.file().readFloats(s.name());
        if (s.third() < 0) return all;
        int n = all.length / 3;
        return Arrays.copyOfRange(all, s.third() * n, (s.third() + 1) * n);
    }

    @Override
    public void close() { files.forEach(TensorSource::close); }
}
