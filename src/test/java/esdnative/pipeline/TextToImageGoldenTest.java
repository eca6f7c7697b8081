package esdnative.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Vae;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * StableDiffusionPipeline(prompt "a photo of a cat", 10 DDIM steps, guidance 7.5) on tiny-sd-a from the fixture's
 * initial latents: the final latents (issue bar: relative error ≤ 1e-4; the manifest suggests 1.2e-5 of max|x|)
 * and the decoded image (output_type "np", the manifest's suggested_atol), via the library and via `generate`.
 */
class TextToImageGoldenTest {
    @Test
    void pipelineLatentsAndImageMatch(@TempDir Path tmp) throws Exception {
        JsonNode files = Json.tree(Fixtures.golden("manifest.json")).get("files");
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        Vae vae = ModelLoader.loadVae(be, sd, null);
        float[] init = Npy.read(Fixtures.golden("pipeline_in_latents.npy")).floats();
        TextToImage.Result r = TextToImage.run(be, sd, vae,
                new TextToImage.Request("a photo of a cat", "", 10, 7.5f, 0f, 0, 32, 32, init), null);

        float[] latents = Npy.read(Fixtures.golden("pipeline_out_latents.npy")).floats();
        Goldens.assertRelClose("pipeline_out_latents", latents, r.latents(), tol(files, "pipeline_out_latents", "suggested_rel_linf"));
        float[] image = Npy.read(Fixtures.golden("pipeline_out_image_np.npy")).floats();
        Goldens.assertClose("pipeline_out_image_np", image, r.image(), tol(files, "pipeline_out_image_np", "suggested_atol"));

        // the same through the command line, and the single file (with the folder's configs) gives the same latents
        Path png = tmp.resolve("cat.png"), saved = tmp.resolve("latents.npy");
        assertEquals(0, Main.run("generate", "--model", Fixtures.path("tiny-sd-a-single-file.safetensors").toString(),
                "--config", Fixtures.path("tiny-sd-a").toString(), "--prompt", "a photo of a cat", "--steps", "10",
                "--init-latents", Fixtures.golden("pipeline_in_latents.npy").toString(), "--save-latents", saved.toString(),
                "--output", png.toString(), "--backend", "cpu"));
        Goldens.assertRelClose("generate's latents", latents, Npy.read(saved).floats(), 1e-4);
        assertEquals(32, ImageIO.read(png.toFile()).getWidth());
    }

    private static double tol(JsonNode files, String name, String key) {
        return files.get(name).get("f32_vs_f64").get(key).asDouble();
    }
}
