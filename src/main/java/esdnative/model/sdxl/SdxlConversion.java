package esdnative.model.sdxl;

import esdnative.checkpoint.CompVisNames;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.util.UserError;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * An SDXL model's tensors moved between its diffusers folder and the original single file ({@link SdxlSingleFileNames}
 * gives every place), bytes and dtype as they were: a VAE attention projection changes shape only ([C, C] ↔ [C, C, 1, 1]),
 * text_encoder_2's q/k/v rows are fused into / split from in_proj, and its projection is transposed.
 */
public final class SdxlConversion {
    /** The diffusers components, in the order a folder lists them. */
    public static final List<String> COMPONENTS = List.of("unet", "vae", "text_encoder", "text_encoder_2");

    private SdxlConversion() {}

    /** The weights file of a component in a diffusers folder, relative to the folder. */
    public static String weightsFile(String component) {
        return component + "/" + (component.startsWith("text_encoder") ? "model" : "diffusion_pytorch_model") + ".safetensors";
    }

    /**
     * The single file's entries of {@code components} (open weights files, by component); fused tensors are
     * allocated in {@code arena}. Tensors with no place (position_ids) are left out.
     */
    public static SequencedMap<String, Entry> toSingleFile(Map<String, SafetensorsFile> components, SdxlSingleFileNames names,
                                                           Arena arena) {
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String[]> fused = new HashMap<>();   // in_proj key → the q, k, v tensors' names
        for (String component : COMPONENTS) {
            SafetensorsFile f = components.get(component);
            for (String name : f.names()) {
                SdxlSingleFileNames.Place p = names.place(component, name);
                if (p == null) continue;
                long[] shape = CompVisNames.compVisShape(p.key(), f.shape(name));
                if (p.transposed()) {
                    entries.put(p.key(), Entry.floats(f.dtype(name), new long[] {shape[1], shape[0]},
                            transposed(f.readFloats(name), (int) shape[0], (int) shape[1])));
                } else if (p.third() >= 0) {
                    fused.computeIfAbsent(p.key(), k -> new String[3])[p.third()] = name;
                    entries.put(p.key(), null);   // its place in the order; filled below
                } else {
                    entries.put(p.key(), Entry.raw(f.dtype(name), shape, f.raw(name)));
                }
            }
        }
        SafetensorsFile text2 = components.get("text_encoder_2");
        fused.forEach((key, qkv) -> {
            for (String part : qkv) if (part == null) throw new UserError(text2.path() + ": " + key + " lacks one of q, k, v");
            entries.put(key, concatenatedRows(text2, qkv, arena));
        });
        return entries;
    }

    /**
     * The folder's entries by component from a single file; keys no component has are added to {@code dropped}.
     */
    public static Map<String, SequencedMap<String, Entry>> toFolder(SafetensorsFile f, SdxlSingleFileNames names, List<String> dropped) {
        Map<String, SequencedMap<String, Entry>> byComponent = new LinkedHashMap<>();
        for (String c : COMPONENTS) byComponent.put(c, new LinkedHashMap<>());
        for (String key : f.names()) {
            List<SdxlSingleFileNames.Named> parts = names.toDiffusers(key);
            if (parts.isEmpty()) {
                dropped.add(key);
                continue;
            }
            for (SdxlSingleFileNames.Named n : parts) {
                SdxlSingleFileNames.Place p = names.place(n.component(), n.name());
                long[] shape = CompVisNames.diffusersShape(key, f.shape(key));
                MemorySegment bytes = f.raw(key);
                Entry e;
                if (p.third() >= 0) {
                    shape[0] /= 3;
                    long size = bytes.byteSize() / 3;
                    e = Entry.raw(f.dtype(key), shape, bytes.asSlice(p.third() * size, size));
                } else if (p.transposed()) {
                    e = Entry.floats(f.dtype(key), new long[] {shape[1], shape[0]},
                            transposed(f.readFloats(key), (int) shape[0], (int) shape[1]));
                } else {
                    e = Entry.raw(f.dtype(key), shape, bytes);
                }
                byComponent.get(n.component()).put(n.name(), e);
            }
        }
        return byComponent;
    }

    /** Three tensors of one dtype and shape stacked on dim 0, as their bytes back to back. */
    private static Entry concatenatedRows(SafetensorsFile f, String[] parts, Arena arena) {
        long[] shape = f.shape(parts[0]);
        MemorySegment all = arena.allocate(3 * f.raw(parts[0]).byteSize());
        long at = 0;
        for (String part : parts) {
            MemorySegment s = f.raw(part);
            MemorySegment.copy(s, 0, all, at, s.byteSize());
            at += s.byteSize();
        }
        shape[0] *= 3;
        return Entry.raw(f.dtype(parts[0]), shape, all);
    }

    /** [rows, cols] → [cols, rows]. */
    private static float[] transposed(float[] m, int rows, int cols) {
        float[] t = new float[m.length];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
        return t;
    }
}
