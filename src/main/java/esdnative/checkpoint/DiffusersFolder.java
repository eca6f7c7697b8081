package esdnative.checkpoint;

import esdnative.util.UserError;
import esdnative.checkpoint.CompVisNames.Component;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A diffusers pipeline folder ({@code model_index.json}, {@code unet/}, {@code text_encoder/}, {@code vae/}, ...)
 * and where each component's safetensors weights are.
 */
public final class DiffusersFolder {
    private DiffusersFolder() {}

    /** True if {@code dir} looks like a pipeline folder (has model_index.json or a unet/text_encoder/vae folder). */
    public static boolean isPipeline(Path dir) {
        if (Files.isRegularFile(dir.resolve("model_index.json"))) return true;
        for (Component c : Component.values()) {
            if (Files.isDirectory(dir.resolve(c.folder()))) return true;
        }
        return false;
    }

    /** The components present in a pipeline folder, each with its weights file. */
    public static Map<Component, Path> components(Path dir) {
        Map<Component, Path> found = new EnumMap<>(Component.class);
        for (Component c : Component.values()) {
            Path sub = dir.resolve(c.folder());
            if (Files.isDirectory(sub)) found.put(c, weightsFile(sub));
        }
        return found;
    }

    /**
     * The weights file of one component folder ({@code unet/}, {@code text_encoder/}, {@code vae/}), by the one folder
     * rule (README.md, "Model layouts"):
     * <ol>
     * <li>the standard name, {@code diffusion_pytorch_model.safetensors} or {@code model.safetensors};</li>
     * <li>else the folder's only {@code .safetensors} file, e.g. a variant such as
     *     {@code diffusion_pytorch_model.fp16.safetensors};</li>
     * <li>several {@code .safetensors} files and none with the standard name: refused, naming them (which variant is
     *     meant is the user's choice: keep that one, or give it the standard name);</li>
     * <li>no {@code .safetensors} file but a PyTorch {@code .bin}: refused, since a {@code .bin} is a pickle (convert
     *     the folder to safetensors first);</li>
     * <li>nothing: refused.</li>
     * </ol>
     */
    public static Path weightsFile(Path componentDir) {
        for (String name : STANDARD_NAMES) {
            Path p = componentDir.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        List<Path> safetensors = filesEndingIn(componentDir, ".safetensors");
        if (safetensors.size() == 1) return safetensors.getFirst();
        if (safetensors.size() > 1) {
            throw new UserError(componentDir + ": several weight files and none named " + STANDARD_NAMES.getFirst()
                    + ": " + fileNames(safetensors) + "; keep only the one to load in the folder, or rename it to "
                    + STANDARD_NAMES.getFirst());
        }
        List<Path> pickles = filesEndingIn(componentDir, ".bin");
        if (!pickles.isEmpty()) {
            throw new UserError(componentDir + ": only PyTorch .bin weights (" + fileNames(pickles) + "), which are "
                    + "pickles and are not loaded from a model folder; convert the folder to safetensors first (diffusers: "
                    + "DiffusionPipeline.from_pretrained(folder).save_pretrained(out, safe_serialization=True))");
        }
        throw new UserError(componentDir + ": no weights in this folder (no " + STANDARD_NAMES.getFirst() + ")");
    }

    /**
     * Copies the small text files of a diffusers folder (configs, scheduler, tokenizer), never weights nor a sharded
     * weights file's index.
     */
    public static void copyConfigs(Path from, Path to) {
        List<Path> files;
        try (Stream<Path> s = Files.walk(from, 2)) {
            files = s.filter(Files::isRegularFile).filter(p -> {
                String n = p.getFileName().toString();
                return (n.endsWith(".json") && !n.endsWith(".index.json")) || n.endsWith(".txt");
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

    /** The standard weights file names of a diffusers (diffusers models) and a transformers (CLIP) component. */
    private static final List<String> STANDARD_NAMES = List.of("diffusion_pytorch_model.safetensors", "model.safetensors");

    private static List<Path> filesEndingIn(Path dir, String suffix) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix) && Files.isRegularFile(p)).sorted().toList();
        } catch (IOException e) {
            throw new UserError(dir + ": cannot list folder: " + e.getMessage(), e);
        }
    }

    private static String fileNames(List<Path> files) {
        return String.join(", ", files.stream().map(p -> p.getFileName().toString()).toList());
    }
}
