package esdnative.toy;

import esdnative.util.UserError;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** The shipped toy base model and judge (classpath resources under /toy/), copied to a temp folder to be loaded. */
public final class ToyAssets implements AutoCloseable {
    private static final List<String> MODEL_FILES = List.of("model_index.json", "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors",
            "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
            "scheduler/scheduler_config.json");
    private final Path dir;

    private ToyAssets(Path dir) {
        this.dir = dir;
    }

    public static ToyAssets extract() {
        try {
            Path dir = Files.createTempDirectory("esd-toy");
            for (String f : MODEL_FILES) copy("/toy/model/" + f, dir.resolve("model").resolve(f));
            copy("/toy/judge.safetensors", dir.resolve("judge.safetensors"));
            return new ToyAssets(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void copy(String resource, Path to) throws IOException {
        try (InputStream in = ToyAssets.class.getResourceAsStream(resource)) {
            if (in == null) throw new UserError("the built-in toy model is missing resource " + resource + " (a broken build?)");
            Files.createDirectories(to.getParent());
            Files.copy(in, to);
        }
    }

    /** The base model's diffusers folder. */
    public Path model() { return dir.resolve("model"); }

    public Path judge() { return dir.resolve("judge.safetensors"); }

    @Override
    public void close() {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
