package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.testing.TinySdxl;
import esdnative.util.UserError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The SDXL UNet (text_time added conditioning, 2 transformer blocks per attention at level 1 and in the mid block,
 * per-level heads, linear projections) against diffusers 0.21.4 on tiny-sdxl-a: noise predictions, every
 * intermediate the fixture hooks, and the gradients of mean((eps − target)²) w.r.t. 17 parameters, the latents,
 * the context and the pooled text embeddings, each within the manifest's suggested_atol; on one backend.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SdxlUNetGoldenChecks {
    private Backend be;
    private UNetConfig config;
    private UNet2DConditionModel unet;
    private Weights params;
    private Tensor latents;
    private Tensor context;
    private UNet2DConditionModel.TextTimeInputs textTime;
    private float[] timesteps;
    private UNet2DConditionModel.Activations acts;

    /** The backend under test (a test that cannot have it aborts with the reason). */
    abstract Backend createBackend();

    @BeforeAll
    void setUp() {
        be = createBackend();
        config = UNetConfig.fromJson(TinySdxl.model("unet/config.json"));
        unet = new UNet2DConditionModel(config);
        params = TinySdxl.weights(be, unet.parameterShapes(), "unet/diffusion_pytorch_model.safetensors", "");
        latents = TinySdxl.tensor(be, "unet_in_latents");
        context = TinySdxl.tensor(be, "unet_in_context");
        textTime = new UNet2DConditionModel.TextTimeInputs(TinySdxl.tensor(be, "unet_in_text_embeds"),
                TinySdxl.npy("unet_in_time_ids").floats());
        long[] t = TinySdxl.npy("unet_in_timesteps").longs();
        timesteps = new float[] {t[0], t[1]};
        acts = unet.forward(be, params, latents, timesteps, context, textTime);
    }

    @AfterAll
    void tearDown() {
        if (be != null) be.close();
    }

    @Test
    void configReadsTheSdxlSettings() {
        assertEquals(new UNetConfig.TextTime(8, 68), config.textTime());
        assertEquals(20, config.textTime().textEmbedDim());
        assertEquals(List.of(1, 2), config.transformerLayersPerBlock());
        assertEquals(List.of(2, 4), config.attentionHeads());
        assertEquals(1_107_604, Weights.elementCount(unet.parameterShapes()), "README-sdxl.md's UNet parameter count");
    }

    @Test
    void otherAddedEmbeddingsAreUserErrors(@TempDir Path dir) throws IOException {
        String sdxl = Files.readString(TinySdxl.model("unet/config.json"));
        Path bad = dir.resolve("config.json");
        Files.writeString(bad, sdxl.replace("\"text_time\"", "\"text_image\""));
        UserError e = assertThrows(UserError.class, () -> UNetConfig.fromJson(bad));
        assertTrue(e.getMessage().contains("addition_embed_type") && e.getMessage().contains("text_image"), e.getMessage());
        Files.writeString(bad, sdxl.replace("\"projection_class_embeddings_input_dim\": 68", "\"projection_class_embeddings_input_dim\": 48"));
        e = assertThrows(UserError.class, () -> UNetConfig.fromJson(bad));
        assertTrue(e.getMessage().contains("projection_class_embeddings_input_dim"), e.getMessage());
    }

    @Test
    void noisePredictions() {
        TinySdxl.assertClose(be, "unet_eps", acts.output());
        TinySdxl.assertClose(be, "unet_eps_t500", unet.predict(be, params, latents, new float[] {500, 500}, context, textTime));
    }

    @Test
    void intermediates() {
        // sin/cos of t·freq in float32, as UNetGoldenChecks explains: an exp or product rounded one ulp apart from
        // torch's moves the argument by up to max(t)·2⁻²³, which the float64 twin (same float32 arguments) cannot show
        TinySdxl.assertClose(be, "unet_intermediate_time_proj", acts.timeProj(),
                Math.max(timesteps[0], timesteps[1]) * Math.ulp(1f));
        TinySdxl.assertClose(be, "unet_intermediate_time_embedding", acts.timeEmbedding());
        TinySdxl.assertClose(be, "unet_intermediate_add_time_proj", acts.addTimeProj());
        TinySdxl.assertClose(be, "unet_intermediate_add_embeds", acts.addEmbeds());
        TinySdxl.assertClose(be, "unet_intermediate_add_embedding", acts.addEmbedding());
        TinySdxl.assertClose(be, "unet_intermediate_conv_in", acts.convIn());
        TinySdxl.assertClose(be, "unet_intermediate_down_block_0", acts.downBlockOutput(0));
        TinySdxl.assertClose(be, "unet_intermediate_down_block_1", acts.downBlockOutput(1));
        TinySdxl.assertClose(be, "unet_intermediate_mid_block", acts.midBlockOutput());
        TinySdxl.assertClose(be, "unet_intermediate_up_block_0", acts.upBlockOutput(0));
        TinySdxl.assertClose(be, "unet_intermediate_up_block_1", acts.upBlockOutput(1));
    }

    @Test
    void withoutItsAddedConditioningTheUNetRefuses() {
        assertThrows(IllegalArgumentException.class, () -> unet.predict(be, params, latents, timesteps, context));
        var wrongIds = new UNet2DConditionModel.TextTimeInputs(textTime.textEmbeds(), new float[6]);
        assertThrows(IllegalArgumentException.class, () -> unet.predict(be, params, latents, timesteps, context, wrongIds));
    }

    @Test
    void gradientsOfMseLoss() {
        Tensor target = TinySdxl.tensor(be, "grad_in_target");
        Tensor eps = acts.output();
        float loss = be.mseLoss(eps, target, eps.size());
        assertEquals(TinySdxl.npy("grad_loss").floats()[0], loss, TinySdxl.tolerance("grad_loss", "suggested_atol"));

        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (String file : TinySdxl.golden("").toFile().list()) {
            if (file.startsWith("grad_param__")) {
                String name = file.substring("grad_param__".length(), file.length() - ".npy".length());
                shapes.put(name, params.get(name).shape());
            }
        }
        assertEquals(17, shapes.size());
        Weights grads = Weights.allocate(be, new LinkedHashMap<>(shapes));
        Tensor dEps = be.zeros(eps.shape());
        be.mseLossBackward(dEps, eps, target, eps.size(), 1f);
        Tensor dLatents = be.zeros(latents.shape());
        Tensor dContext = be.zeros(context.shape());
        Tensor dTextEmbeds = be.zeros(textTime.textEmbeds().shape());
        unet.backward(be, params, grads, acts, dEps, dLatents, dContext, dTextEmbeds);

        TinySdxl.assertClose(be, "grad_wrt_latents", dLatents);
        TinySdxl.assertClose(be, "grad_wrt_context", dContext);
        TinySdxl.assertClose(be, "grad_wrt_text_embeds", dTextEmbeds);
        for (String n : shapes.keySet()) TinySdxl.assertClose(be, "grad_param__" + n, grads.get(n));
    }
}
