package esdnative.esd;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.optim.Adam;
import esdnative.tensor.Tensor;
import esdnative.testing.FixtureWeights;
import esdnative.testing.Fixtures;
import esdnative.testing.Goldens;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One ESD-x step on tiny-sd-a against the reference (manifest: frozen and trainable UNets from the same weights,
 * eta 1, Adam lr 1e-5 over every "attn2" parameter): e0, ep, en, the loss, four gradients, the parameters after
 * the Adam step and the loss re-evaluated after it. Tolerances: the manifest's suggested_atol per file
 * (10× the float32-vs-float64 error of the golden itself).
 */
class EsdStepGoldenTest {
    private static final List<String> CHECKED = List.of(
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
            "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight",
            "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.weight",
            "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.bias");

    @Test
    void oneXattnStepMatchesTheReference() {
        JsonNode files = Json.tree(Fixtures.golden("manifest.json")).get("files");
        Backend be = new CpuBackend();
        UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        Weights frozen = FixtureWeights.unet(be, config, Fixtures.path("tiny-sd-a"));

        TrainableSubset subset = TrainableSubset.select(be, frozen, name -> name.contains("attn2"));
        assertEquals(Json.tree(Fixtures.golden("manifest.json")).get("scalars").get("esd_num_trainable_parameters").asInt(),
                subset.parameterCount());

        Tensor z = golden(be, "esd_in_z");
        int t = (int) Npy.read(Fixtures.golden("esd_in_t.npy")).longs()[0];
        Tensor embNull = golden(be, "esd_in_emb_null");
        Tensor embConcept = golden(be, "esd_in_emb_concept");

        EsdLoss.Result r = EsdLoss.compute(be, unet, frozen, subset.trainable(), subset.gradients(), z, t,
                embNull, embConcept, 1f);
        assertClose(files, "esd_e0", be.toHost(r.e0()));
        assertClose(files, "esd_ep", be.toHost(r.ep()));
        assertClose(files, "esd_en", be.toHost(r.en()));
        assertClose(files, "esd_target", be.toHost(r.target()));
        assertClose(files, "esd_loss", new float[] {r.loss()});
        for (String name : CHECKED) {
            assertClose(files, "esd_grad__" + name, be.toHost(subset.gradients().get(name)));
        }

        Adam adam = new Adam(be, subset.trained(), Adam.Config.torchDefaults(1e-5f));
        adam.step(be, subset.trained(), subset.gradients());
        for (String name : CHECKED) {
            assertClose(files, "esd_param_after__" + name, be.toHost(subset.trained().get(name)));
        }
        // the frozen model still holds the original values
        assertClose(files, "esd_param_before__" + CHECKED.getFirst(), be.toHost(frozen.get(CHECKED.getFirst())), 0);

        subset.zeroGradients(be);
        EsdLoss.Result after = EsdLoss.compute(be, unet, frozen, subset.trainable(), subset.gradients(), z, t,
                embNull, embConcept, 1f);
        assertClose(files, "esd_en_after_step", be.toHost(after.en()));
        assertClose(files, "esd_loss_after_step", new float[] {after.loss()});
        assertTrue(after.loss() < r.loss(), "one step lowers the loss: " + r.loss() + " → " + after.loss());
    }

    private static Tensor golden(Backend be, String name) {
        var a = Npy.read(Fixtures.golden(name + ".npy"));
        return be.fromHost(a.floats(), a.shape());
    }

    private static void assertClose(JsonNode files, String name, float[] actual) {
        assertClose(files, name, actual, files.get(name).get("f32_vs_f64").get("suggested_atol").asDouble());
    }

    private static void assertClose(JsonNode files, String name, float[] actual, double atol) {
        Goldens.assertClose(name, Npy.read(Fixtures.golden(files.get(name).get("file").asText())).floats(), actual, atol);
    }
}
