package esdnative.model.unet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import esdnative.backend.Backend;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.testing.FixtureWeights;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The UNet against diffusers 0.21.4 on the tiny fixture model, on one backend: noise predictions,
 * intermediates, and the gradients of loss = mean((eps - target)²) w.r.t. 16 parameters, the latents and the
 * context. Each comparison uses the manifest's suggested_atol for that file: 10× the float32-vs-float64 error of
 * the golden itself (or 1e-6 of its largest value), a fair bound for a float32 implementation that sums in
 * another order.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class UNetGoldenChecks {
    private Backend be;
    private JsonNode manifest;
    private UNet2DConditionModel unet;
    private Weights params;
    private Tensor latents;
    private Tensor context;
    private float[] timesteps;
    private UNet2DConditionModel.Activations acts;

    /** The backend under test (a test that cannot have it aborts with the reason). */
    abstract Backend createBackend();

    @BeforeAll
    void setUp() throws IOException {
        Path golden = Fixtures.golden("manifest.json");
        manifest = new ObjectMapper().readTree(golden.toFile()).get("files");
        be = createBackend();
        UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        unet = new UNet2DConditionModel(config);
        params = FixtureWeights.unet(be, config, Fixtures.path("tiny-sd-a"));
        latents = load("unet_in_latents.npy");
        context = load("unet_in_context.npy");
        long[] t = Npy.read(Fixtures.golden("unet_in_timesteps.npy")).longs();
        timesteps = new float[] {t[0], t[1]};
        acts = unet.forward(be, params, latents, timesteps, context);
    }

    @AfterAll
    void tearDown() {
        if (be != null) be.close();
    }

    private Tensor load(String name) {
        NpyArray npy = Npy.read(Fixtures.golden(name));
        return be.fromHost(npy.floats(), npy.shape());
    }

    /** |ours - golden| ≤ the manifest's suggested_atol for that golden, element-wise. */
    private void assertClose(String key, Tensor ours) {
        assertClose(key, ours, manifest.get(key).get("f32_vs_f64").get("suggested_atol").asDouble());
    }

    private void assertClose(String key, Tensor ours, double atol) {
        NpyArray golden = Npy.read(Fixtures.golden(manifest.get(key).get("file").asText()));
        float[] ref = golden.floats();
        assertArrayEquals(golden.shape(), ours.shape(), key + " shape");
        Goldens.assertClose(key, ref, be.toHost(ours), atol);
    }

    @Test
    void noisePrediction() {
        assertClose("unet_eps", acts.output());
    }

    @Test
    void noisePredictionAtT500() {
        assertClose("unet_eps_t500", unet.predict(be, params, latents, new float[] {500, 500}, context));
    }

    @Test
    void badInputShapesAreRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> unet.predict(be, params, be.zeros(1, 3, 16, 16), new float[] {1}, be.zeros(1, 77, 32)));
        assertThrows(IllegalArgumentException.class,
                () -> unet.predict(be, params, be.zeros(1, 4, 16, 16), new float[] {1, 2}, be.zeros(1, 77, 32)));
        assertThrows(IllegalArgumentException.class,
                () -> unet.predict(be, params, be.zeros(1, 4, 16, 16), new float[] {1}, be.zeros(1, 77, 16)));
    }

    @Test
    void predictIsForwardWithoutTheActivations() {
        Tensor first = unet.predict(be, params, latents, timesteps, context);
        float[] firstValues = be.toHost(first);
        assertArrayEquals(be.toHost(acts.output()), firstValues);
        // a second run reuses the first one's recycled temporaries: same result, and the first output untouched
        assertArrayEquals(firstValues, be.toHost(unet.predict(be, params, latents, timesteps, context)));
        assertArrayEquals(firstValues, be.toHost(first));
    }

    @Test
    void intermediates() {
        // sin/cos of t·freq in float32 (the golden's float64 twin does the same, hence its floor atol of 1e-6):
        // an exp or product rounded one ulp apart from torch's moves the argument by up to max(t)·2⁻²³
        double maxT = Math.max(timesteps[0], timesteps[1]);
        assertClose("unet_intermediate_time_proj", acts.timeProj(), maxT * Math.ulp(1f));
        assertClose("unet_intermediate_time_embedding", acts.timeEmbedding());
        assertClose("unet_intermediate_conv_in", acts.convIn());
        assertClose("unet_intermediate_down_block_0", acts.downBlockOutput(0));
        assertClose("unet_intermediate_down_block_1", acts.downBlockOutput(1));
        assertClose("unet_intermediate_mid_block", acts.midBlockOutput());
        assertClose("unet_intermediate_up_block_0", acts.upBlockOutput(0));
        assertClose("unet_intermediate_up_block_1", acts.upBlockOutput(1));
    }

    @Test
    void gradientsOfMseLoss() {
        Tensor target = load("grad_in_target.npy");
        Tensor eps = acts.output();
        float loss = be.mseLoss(eps, target, eps.size());
        assertEquals(Npy.read(Fixtures.golden("grad_loss.npy")).floats()[0], loss,
                manifest.get("grad_loss").get("f32_vs_f64").get("suggested_atol").asDouble());

        // gradients only for the 16 parameters the fixture has (the others are skipped)
        List<String> names = new ArrayList<>();
        manifest.properties().forEach(e -> {
            if (e.getKey().startsWith("grad_param__")) names.add(e.getValue().get("parameter").asText());
        });
        assertEquals(16, names.size());
        var shapes = new java.util.LinkedHashMap<String, int[]>();
        for (String n : names) shapes.put(n, params.get(n).shape());
        Weights grads = Weights.allocate(be, shapes);

        Tensor dEps = be.zeros(eps.shape());
        be.mseLossBackward(dEps, eps, target, eps.size(), 1f);
        Tensor dLatents = be.zeros(latents.shape());
        Tensor dContext = be.zeros(context.shape());
        unet.backward(be, params, grads, acts, dEps, dLatents, dContext);

        assertClose("grad_wrt_latents", dLatents);
        assertClose("grad_wrt_context", dContext);
        for (String n : names) assertClose("grad_param__" + n, grads.get(n));
    }
}
