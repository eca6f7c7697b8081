package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Npy;
import esdnative.model.Weights;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.tensor.Tensor;
import esdnative.testing.FixtureWeights;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Both ESD targets on SD1 (tiny-sd-a's ESD step inputs), against the formulas evaluated in double from the same
 * e0 and ep: the paper's e0 − η(ep − e0) and the 2025 code's ep − η(ep − e0); at η = 1 the latter is e0 exactly.
 */
class TargetTest {
    @Test
    void bothTargetsOnSd1() {
        Backend be = new CpuBackend();
        UNetConfig config = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        UNet2DConditionModel unet = new UNet2DConditionModel(config);
        Weights frozen = FixtureWeights.unet(be, config, Fixtures.path("tiny-sd-a"));
        TrainableSubset subset = TrainableSubset.select(be, frozen, name -> name.contains("attn2"));
        Tensor z = golden(be, "esd_in_z");
        int t = (int) Npy.read(Fixtures.golden("esd_in_t.npy")).longs()[0];
        PromptEmbeds none = new PromptEmbeds(golden(be, "esd_in_emb_null"), null);
        PromptEmbeds concept = new PromptEmbeds(golden(be, "esd_in_emb_concept"), null);
        for (Target target : Target.values()) {
            for (float eta : new float[] {1f, 0.5f, 2f}) {
                EsdLoss.Result r = EsdLoss.compute(be, unet, frozen, subset.trainable(), subset.gradients(), z, t, none,
                        concept, null, target, eta);
                float[] e0 = be.toHost(r.e0()), ep = be.toHost(r.ep()), got = be.toHost(r.target());
                for (int i = 0; i < e0.length; i++) {
                    double diff = (double) ep[i] - e0[i];
                    double want = target == Target.PAPER ? e0[i] - eta * diff : ep[i] - eta * diff;
                    if (target == Target.ESD_2025 && eta == 1f) assertEquals(e0[i], got[i], 0, "η 1: e0 itself");
                    assertEquals(want, got[i], 1e-6 * (1 + Math.abs(want)), target + " η " + eta + " at " + i);
                }
            }
        }
    }

    @Test
    void parse() {
        assertEquals(Target.PAPER, Target.parse("paper"));
        assertEquals(Target.ESD_2025, Target.parse(" ESD-2025 "));
        assertThrows(esdnative.util.UserError.class, () -> Target.parse("2025"));
    }

    private static Tensor golden(Backend be, String name) {
        var a = Npy.read(Fixtures.golden(name + ".npy"));
        return be.fromHost(a.floats(), a.shape());
    }
}
