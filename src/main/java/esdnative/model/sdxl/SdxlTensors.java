package esdnative.model.sdxl;

import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.util.UserError;
import esdnative.checkpoint.CompVisNames;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An SDXL model's tensors by diffusers component ("unet", "vae", "text_encoder", "text_encoder_2") and diffusers
 * name, with diffusers shapes, whatever the layout on disk: a diffusers folder (one file per component) or the
 * original single file ({@link SdxlSingleFileNames}).
 */
public abstract sealed class SdxlTensors implements AutoCloseable {

    /**
     * An SDXL folder's or single file's tensors; a single file's block layout is read off its names (enough to
     * name every tensor; a model to run needs the configs).
     */
    public static SdxlTensors open(Path model) {
        if (Files.isDirectory(model)) return new Folder(model);
        SafetensorsFile f = SafetensorsFile.open(model);
        return new SingleFile(f, CompVisNames.Topology.fromCompVis(f.names()));
    }

    /** Every diffusers name the component has here, in the file's order. */
    public abstract List<String> names(String component);

    /** The component's tensors that {@code expected} names (a folder lists all of its file's): name → shape. */
    public abstract Map<String, int[]> shapes(String component, Collection<String> expected);

    /** One tensor's values as float32, in diffusers layout. */
    public abstract float[] read(String component, String name);

    /** Where the component's tensors are, for messages. */
    public abstract String describe(String component);

    @Override
    public abstract void close();

    /** A diffusers folder's component files: {@code <component>/<stem>.safetensors}. */
    static final class Folder extends SdxlTensors {
        private static final Map<String, String> STEMS = Map.of("unet", "diffusion_pytorch_model",
                "vae", "diffusion_pytorch_model", "text_encoder", "model", "text_encoder_2", "model");
        private final Path dir;
        private final Map<String, SafetensorsFile> open = new HashMap<>();

        Folder(Path dir) { this.dir = dir; }

        private SafetensorsFile file(String component) {
            return open.computeIfAbsent(component, c -> {
                Path p = dir.resolve(c).resolve(STEMS.get(c) + ".safetensors");
                if (!Files.isRegularFile(p)) throw new UserError(p + " not found: an SDXL diffusers folder needs it");
                return SafetensorsFile.open(p);
            });
        }

        @Override
        public List<String> names(String component) { return List.copyOf(file(component).names()); }

        @Override
        public Map<String, int[]> shapes(String component, Collection<String> expected) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (TensorInfo t : file(component).tensors()) shapes.put(t.name(), t.intShape());
            return shapes;
        }

        @Override
        public float[] read(String component, String name) { return file(component).readFloats(name); }

        @Override
        public String describe(String component) { return file(component).path().toString(); }

        @Override
        public void close() { open.values().forEach(SafetensorsFile::close); }
    }

    /** The original SDXL single file. */
    static final class SingleFile extends SdxlTensors {
        private final SafetensorsFile file;
        private final SdxlSingleFileNames names;

        SingleFile(SafetensorsFile file, CompVisNames.Topology topology) {
            this.file = file;
            this.names = new SdxlSingleFileNames(topology);
        }

        @Override
        public List<String> names(String component) {
            List<String> names = new ArrayList<>();
            for (String key : file.names()) {
                for (SdxlSingleFileNames.Named n : this.names.toDiffusers(key)) if (n.component().equals(component)) names.add(n.name());
            }
            return names;
        }

        @Override
        public Map<String, int[]> shapes(String component, Collection<String> expected) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (String name : expected) {
                SdxlSingleFileNames.Place p = names.place(component, name);
                TensorInfo t = p == null ? null : file.info(p.key());
                if (t != null) shapes.put(name, diffusersShape(p, t.intShape()));
            }
            return shapes;
        }

        /** The file's shape in diffusers layout: a third of dim 0, transposed, or a 1×1 convolution as a linear. */
        private static int[] diffusersShape(SdxlSingleFileNames.Place p, int[] shape) {
            long[] s = CompVisNames.diffusersShape(p.key(), Arrays.stream(shape).asLongStream().toArray());
            if (p.third() >= 0) s[0] /= 3;
            if (p.transposed() && s.length == 2) s = new long[] {s[1], s[0]};
            return Arrays.stream(s).mapToInt(Math::toIntExact).toArray();
        }

        @Override
        public float[] read(String component, String name) {
            SdxlSingleFileNames.Place p = names.place(component, name);
            float[] all = file.readFloats(p.key());
            int[] shape = file.info(p.key()).intShape();
            if (p.third() >= 0) {
                int n = all.length / 3;
                float[] part = new float[n];
                System.arraycopy(all, p.third() * n, part, 0, n);
                return part;
            }
            if (p.transposed()) {
                int rows = shape[0], cols = shape[1];
                float[] t = new float[all.length];
                for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = all[r * cols + c];
                return t;
            }
            return all;
        }

        @Override
        public String describe(String component) { return file.path() + " (" + component + ")"; }

        @Override
        public void close() { file.close(); }
    }
}
