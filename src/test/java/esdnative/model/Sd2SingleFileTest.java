package esdnative.model;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.esd.EsdLoss;
import esdnative.esd.TrainableSubset;
import esdnative.optim.Adam;
import esdnative.pipeline.TextToImage;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import esdnative.model.clip.ClipTextConfig;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.ModelWeights;
import esdnative.model.clip.ClipTextModel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * tiny-sd2-a (README-clip-sd2.md §3) from its diffusers folder and from its SD 2.x single file (OpenCLIP text tower
 * with one resblock more than the encoder uses and fused q/k/v; the folder's configs via --config, as no tensor holds
 * this tiny model's head counts and norm groups): tokens, text encoder, v-predicting UNet, DDIM v steps, the ESD-x
 * step, VAE and the 10-step v-prediction pipeline, each within its manifest tolerance (the pipeline also within the
 * issue's 1e-4 relative).
 */
class Sd2SingleFileTest {
    private static final Path GOLDEN = Fixtures.path("tiny-sd2-a-golden");
    private static final Path FOLDER = Fixtures.path("tiny-sd2-a");
    private static final Path SINGLE_FILE = Fixtures.path("tiny-sd2-a-single-file.safetensors");

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "single file: {0}")
    @ValueSource(booleans = {false, true})
    void goldensFromFolderAndSingleFile(boolean singleFile) {
        Backend be = new CpuBackend();
        StableDiffusion sd = singleFile
                ? ModelLoader.load(be, SINGLE_FILE, FOLDER.resolve("tokenizer"), FOLDER)
                : ModelLoader.load(be, FOLDER, null, null);
        assertEquals("v_prediction", sd.scheduler().predictionType());
        assertEquals(2, sd.textEncoder().config().numHiddenLayers(), "the penultimate of the file's 3 resblocks");

        List<String> prompts = new ArrayList<>();
        Json.tree(golden("prompts.json")).forEach(p -> prompts.add(p.asText()));
        int[] ids = sd.tokenizer().encodeBatch(prompts);
        int[] expectedIds = Arrays.stream(Npy.read(golden("tokens_input_ids.npy")).longs()).mapToInt(Math::toIntExact).toArray();
        assertArrayEquals(expectedIds, ids);
        Goldens.assertClose(GOLDEN, "text_last_hidden_state", be.toHost(sd.textEncoder().forward(ids, prompts.size())));

        long[] t = Npy.read(golden("unet_in_timesteps.npy")).longs();
        Goldens.assertClose(GOLDEN, "unet_v", be.toHost(sd.unetModel().predict(be, sd.unetWeights(),
                tensor(be, "unet_in_latents.npy"), new float[] {t[0], t[1]}, tensor(be, "unet_in_context.npy"))));

        Vae vae = ModelLoader.loadVae(be, sd, singleFile ? FOLDER : null);
        Goldens.assertClose(GOLDEN, "vae_decoded_image", be.toHost(vae.decoder().decode(be, vae.weights(),
                tensor(be, "pipeline_out_latents.npy"))));

        // DDIM with the loaded scheduler config: the model output read as v
        DdimScheduler ddim = new DdimScheduler(sd.scheduler());
        ddim.setTimesteps(10);
        Tensor v = tensor(be, "ddim_step_in_model_output.npy"), x = tensor(be, "ddim_step_in_sample.npy");
        for (int step : new int[] {901, 501, 1}) {
            Tensor prev = be.zeros(1, 4, 8, 8), x0 = be.zeros(1, 4, 8, 8);
            ddim.step(be, prev, x0, v, step, x, 0f, null);
            Goldens.assertClose(GOLDEN, "ddim_step_t" + step + "_pred_original_sample", be.toHost(x0));
            Goldens.assertClose(GOLDEN, "ddim_step_t" + step + "_prev_sample", be.toHost(prev));
        }

        checkEsdStep(be, sd);

        float[] init = Npy.read(golden("pipeline_in_latents.npy")).floats();
        float[] stepLatents = new float[10 * init.length];
        long[] timesteps = new long[10];
        TextToImage.Result r = TextToImage.run(be, sd, vae,
                new TextToImage.Request("a photo of a cat", "", 10, 7.5f, 0f, 0, 16, 16, init), (i, step, latents) -> {
                    timesteps[i] = step;
                    System.arraycopy(be.toHost(latents), 0, stepLatents, i * init.length, init.length);
                });
        assertArrayEquals(Npy.read(golden("pipeline_step_timesteps.npy")).longs(), timesteps);
        Goldens.assertClose(GOLDEN, "pipeline_step_latents", stepLatents);
        Goldens.assertClose(GOLDEN, "pipeline_out_latents", r.latents());
        Goldens.assertRelClose("pipeline_out_latents", Npy.read(golden("pipeline_out_latents.npy")).floats(), r.latents(), 1e-4);
        Goldens.assertClose(GOLDEN, "pipeline_out_image_np", r.image());
    }

    /**
     * What no tensor holds is assumed and said: read off the file's shapes, the text tower has 2 layers (of its 3
     * resblocks), gelu and 64-channel heads (1 for this 8-wide tower, which has 2: named as assumed), where SD 2.x's
     * own shapes (1024 wide, 23 layers) give its 16 heads and no warning; and configs without a scheduler leave
     * epsilon, with a note naming --prediction-type.
     */
    @Test
    void assumedValuesAreNamed() throws IOException {
        ClipTextConfig text;
        try (ModelWeights w = ModelWeights.open(SINGLE_FILE, ModelWeights.Ema.OFF)) {
            assertTrue(w.openClipText());
            text = SingleFileArchitecture.text(w.shapes(Component.TEXT_ENCODER), true);
        }
        assertEquals(new ClipTextConfig(49408, 8, 32, 2, 1, 77, "gelu", 1e-5f), text);
        assertTrue(SingleFileArchitecture.assumed(text).contains("attention heads 1 (64 channels each)"));

        ClipTextConfig sd2 = new ClipTextConfig(49408, 1024, 4096, 23, 16, 77, "gelu", 1e-5f);
        Map<String, int[]> shapes = new LinkedHashMap<>();
        ClipTextModel.parameterShapes(sd2).forEach((n, shape) -> shapes.put("text_model." + n, shape));
        assertEquals(sd2, SingleFileArchitecture.text(shapes, true));
        assertEquals(List.of(), SingleFileArchitecture.assumed(sd2));

        Path config = configWithoutScheduler();
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            assertEquals("epsilon", ModelLoader.load(new CpuBackend(), SINGLE_FILE, FOLDER.resolve("tokenizer"), config)
                    .scheduler().predictionType());
        } finally {
            System.setErr(saved);
        }
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--prediction-type v_prediction"), err.toString(StandardCharsets.UTF_8));
    }

    /** One ESD-x step (eta 1, Adam lr 1e-5 over every attn2 parameter) on the v outputs as they are. */
    private static void checkEsdStep(Backend be, StableDiffusion sd) {
        Weights frozen = sd.unetWeights();
        TrainableSubset subset = TrainableSubset.select(be, frozen, name -> name.contains("attn2"));
        assertEquals(Json.tree(golden("manifest.json")).get("scalars").get("esd_num_trainable_parameters").asInt(),
                subset.parameterCount());
        int t = (int) Npy.read(golden("esd_in_t.npy")).longs()[0];
        EsdLoss.Result r = EsdLoss.compute(be, sd.unetModel(), frozen, subset.trainable(), subset.gradients(),
                tensor(be, "esd_in_z.npy"), t, tensor(be, "esd_in_emb_null.npy"), tensor(be, "esd_in_emb_concept.npy"), 1f);
        for (String n : List.of("e0", "ep", "en", "target")) {
            Tensor out = switch (n) { case "e0" -> r.e0(); case "ep" -> r.ep(); case "en" -> r.en(); default -> r.target(); };
            Goldens.assertClose(GOLDEN, "esd_" + n, be.toHost(out));
        }
        Goldens.assertClose(GOLDEN, "esd_loss", new float[] {r.loss()});
        for (String name : ESD_CHECKED) Goldens.assertClose(GOLDEN, "esd_grad__" + name, be.toHost(subset.gradients().get(name)));
        new Adam(be, subset.trained(), Adam.Config.torchDefaults(1e-5f)).step(be, subset.trained(), subset.gradients());
        for (String name : ESD_CHECKED) Goldens.assertClose(GOLDEN, "esd_param_after__" + name, be.toHost(subset.trained().get(name)));
        subset.zeroGradients(be);
        EsdLoss.Result after = EsdLoss.compute(be, sd.unetModel(), frozen, subset.trainable(), subset.gradients(),
                tensor(be, "esd_in_z.npy"), t, tensor(be, "esd_in_emb_null.npy"), tensor(be, "esd_in_emb_concept.npy"), 1f);
        Goldens.assertClose(GOLDEN, "esd_en_after_step", be.toHost(after.en()));
        Goldens.assertClose(GOLDEN, "esd_loss_after_step", new float[] {after.loss()});
    }

    private static final List<String> ESD_CHECKED = List.of(
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
            "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight",
            "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.weight",
            "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.bias");

    /**
     * `generate --init-latents` from the single file with configs that hold no scheduler: the 10-step pipeline is
     * reproduced with --prediction-type v_prediction, and not with the epsilon a single file defaults to.
     */
    @Test
    void generateReproducesThePipelineWithPredictionType() throws IOException {
        Path config = configWithoutScheduler();
        float[] expected = Npy.read(golden("pipeline_out_latents.npy")).floats();
        Goldens.assertRelClose("generate --prediction-type v_prediction", expected, generate(config, "--prediction-type", "v_prediction"), 1e-4);
        assertTrue(Goldens.relLinf(expected, generate(config)) > 1e-2, "epsilon must not reproduce a v-prediction pipeline");
        assertEquals(2, Main.run("generate", "--model", SINGLE_FILE.toString(), "--prompt", "x", "--prediction-type", "sample",
                "--output", tmp.resolve("bad.png").toString(), "--backend", "cpu"));
        assertEquals(2, Main.run("generate", "--model", FOLDER.toString(), "--prompt", "x", "--prediction-type", "epsilon",
                "--output", tmp.resolve("bad.png").toString(), "--backend", "cpu"));
        assertFalse(Files.exists(tmp.resolve("bad.png")));
    }

    /** tiny-sd2-a's unet, text_encoder and vae configs, and no scheduler config. */
    private Path configWithoutScheduler() throws IOException {
        Path config = tmp.resolve("config");
        for (String c : List.of("unet/config.json", "text_encoder/config.json", "vae/config.json")) {
            Files.createDirectories(config.resolve(c).getParent());
            Files.copy(FOLDER.resolve(c), config.resolve(c));
        }
        return config;
    }

    private float[] generate(Path config, String... extra) {
        String run = "run" + extra.length;
        Path saved = tmp.resolve(run + ".npy");
        List<String> args = new ArrayList<>(List.of("generate", "--model", SINGLE_FILE.toString(),
                "--config", config.toString(), "--tokenizer", FOLDER.resolve("tokenizer").toString(),
                "--prompt", "a photo of a cat", "--steps", "10", "--init-latents", golden("pipeline_in_latents.npy").toString(),
                "--save-latents", saved.toString(), "--output", tmp.resolve(run + ".png").toString(), "--backend", "cpu"));
        args.addAll(List.of(extra));
        assertEquals(0, Main.run(args.toArray(String[]::new)));
        return Npy.read(saved).floats();
    }

    private static Path golden(String name) {
        return GOLDEN.resolve(name);
    }

    private static Tensor tensor(Backend be, String name) {
        NpyArray a = Npy.read(golden(name));
        return be.fromHost(a.floats(), a.shape());
    }
}
