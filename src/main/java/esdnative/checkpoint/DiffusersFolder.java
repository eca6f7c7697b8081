package esdnative.checkpoint;

import esdnative.util.UserError;
import esdnative.checkpoint.CompVisNames.Component;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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
     * The weights of one component folder: the standard safetensors name ({@code diffusion_pytorch_model.safetensors}
     * or {@code model.safetensors}), else the only {@code .safetensors} file in it (e.g. an fp16 variant), else the
     * standard PyTorch {@code .bin} (read by the safe checkpoint reader).
     */
    public static Path weightsFile(Path componentDir) {
        for (String name : List.of("diffusion_pytorch_model.safetensors", "model.safetensors")) {
            Path p = componentDir.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        List<Path> candidates;
        try (Stream<Path> s = Files.list(componentDir)) {
            candidates = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        } catch (IOException e) {
            throw new UserError(componentDir + ": cannot list folder: " + e.getMessage(), e);
        }
        if (candidates.size() == 1) return candidates.getFirst();
        if (candidates.size() > 1) {
            throw new UserError(componentDir + ": several .safetensors files and none with the standard name: " + candidates);
        }
        for (String name : List.of("diffusion_pytorch_model.bin", "pytorch_model.bin")) {
            Path p = componentDir.resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        throw new UserError(componentDir + ": no weights in this folder (no .safetensors or standard .bin file)");
    }
}
