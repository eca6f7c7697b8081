package esdnative.cli;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.cpu.CpuBackend;
import esdnative.checkpoint.Layout;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.vae.VaeConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A single file in, {@code --format diffusers} out: a complete pipeline folder (issue 21.7). tiny-sd-a-single-file is
 * tiny-sd-a converted bit for bit, so the folder's text encoder and VAE must be tiny-sd-a's, tensor for tensor.
 */
class SingleFilePipelineOutputTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu",
            "--concept", "a photo of a cat", "--format", "diffusers"};

    @Test
    void writesEveryComponentWithConfigsFromTheConfigFolder(@TempDir Path tmp) {
        Path reference = Fixtures.path("tiny-sd-a");
        Path out = tmp.resolve("out");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", Fixtures.path("tiny-sd-a-single-file.safetensors").toString(),
                "--config", reference.toString(), "--tokenizer", Fixtures.path("clip-tokenizer").toString(),
                "--output", out.toString()}, QUICK)));
        checkPipelineFolder(out);
        for (String file : new String[] {"text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors"}) {
            try (SafetensorsFile ours = SafetensorsFile.open(out.resolve(file)); SafetensorsFile ref = SafetensorsFile.open(reference.resolve(file))) {
                assertEquals(ref.names(), ours.names(), file);
                for (String name : ref.names()) {
                    assertArrayEquals(ref.shape(name), ours.shape(name), name);
                    assertEquals(-1, ref.raw(name).mismatch(ours.raw(name)), name);
                }
            }
        }
        for (String config : new String[] {"text_encoder/config.json", "vae/config.json", "scheduler/scheduler_config.json"}) {
            assertEquals(Json.tree(reference.resolve(config)), Json.tree(out.resolve(config)), config);
        }
        // our own loader reads it as a diffusers folder, VAE included
        try (CpuBackend be = new CpuBackend()) {
            StableDiffusion sd = ModelLoader.load(be, out, null, null);
            assertEquals(Layout.DIFFUSERS, sd.layout());
            assertNotNull(ModelLoader.loadVae(be, sd, null));
        }
    }

    @Test
    void withoutAConfigFolderTheConfigsAreTheOnesTheLoaderInferred(@TempDir Path tmp) {
        Path single = Fixtures.path("tiny-sd-a-single-file.safetensors"), tokenizer = Fixtures.path("clip-tokenizer");
        Path out = tmp.resolve("out");
        assertEquals(0, Main.run(concat(new String[] {"train", "--model", single.toString(), "--tokenizer", tokenizer.toString(),
                "--output", out.toString()}, QUICK)));
        checkPipelineFolder(out);
        try (CpuBackend be = new CpuBackend()) {
            StableDiffusion fromFile = ModelLoader.load(be, single, tokenizer, null);
            assertEquals(ModelLoader.vaeConfig(fromFile, null), VaeConfig.fromJson(out.resolve("vae/config.json")));
            assertEquals(fromFile.textEncoder().config(), ClipTextConfig.read(out.resolve("text_encoder/config.json")));
            StableDiffusion fromFolder = ModelLoader.load(be, out, null, null);
            assertEquals(fromFile.unet(), fromFolder.unet());
            assertEquals(fromFile.tokenizer().maxLength(), fromFolder.tokenizer().maxLength());
        }
        assertEquals(0, Main.run("generate", "--model", out.toString(), "--prompt", "a cat", "--steps", "2", "--backend", "cpu",
                "--width", "32", "--height", "32", "--output", tmp.resolve("g.png").toString()));
    }

    /** model_index.json names exactly the component folders there are, each with its config and weights. */
    private static void checkPipelineFolder(Path out) {
        JsonNode index = Json.tree(out.resolve("model_index.json"));
        assertEquals("StableDiffusionPipeline", index.get("_class_name").asText());
        int named = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = index.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().startsWith("_") || !e.getValue().isArray() || e.getValue().get(0).isNull()) continue;
            assertTrue(Files.isDirectory(out.resolve(e.getKey())), e.getKey());
            named++;
        }
        assertEquals(5, named, index.toString());
        for (String f : new String[] {"unet/config.json", "unet/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
                "text_encoder/model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertEquals(77, Json.tree(out.resolve("tokenizer/tokenizer_config.json")).get("model_max_length").asInt());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
