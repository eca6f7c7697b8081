package esdnative.lora;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.esd.EsdOutput;
import esdnative.esd.EsdTrainer;
import esdnative.io.DType;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.io.SafetensorsFile;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * tiny-sd-a erased with ESD-x (two iterations, lr 1e-3 so that ΔW is well above float rounding), written as a LoRA,
 * applied to a fresh copy of tiny-sd-a as {@code generate --lora} does: the applied weights are the erased ones within
 * each module's reported residual, and the UNet's output on the fixture inputs follows. The LoRA carries the weights;
 * ESD-x's changed to_out.0 biases are listed, not carried, so "the erased model" here is the base with the erased
 * weight matrices (its biases the base's).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LoraTinySdTest {
    private Backend be;
    private StableDiffusion sd;
    private EsdTrainer trainer;
    private Weights erasedMatrices;
    private Tensor latents, context;
    private float[] timesteps;
    private float[] outBase, outErased;

    @BeforeAll
    void train() {
        be = new CpuBackend();
        sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        trainer = new EsdTrainer(be, sd, EsdTrainer.Settings.paper(List.of("Van Gogh")).withIterations(2).withLr(1e-3f)
                .withDdimSteps(4).withResolution(sd.defaultResolution()).withSeed(5));
        for (int i = 0; i < 2; i++) trainer.step(trainer.draw());
        Map<String, Tensor> matrices = new LinkedHashMap<>();
        trainer.subset().trained().asMap().forEach((n, t) -> {
            if (n.endsWith(".weight")) matrices.put(n, t);
        });
        erasedMatrices = sd.unetWeights().withReplaced(matrices);
        NpyArray l = Npy.read(Fixtures.golden("unet_in_latents.npy")), c = Npy.read(Fixtures.golden("unet_in_context.npy"));
        latents = be.fromHost(l.floats(), l.shape());
        context = be.fromHost(c.floats(), c.shape());
        long[] t = Npy.read(Fixtures.golden("unet_in_timesteps.npy")).longs();
        timesteps = new float[] {t[0], t[1]};
        outBase = predict(sd.unetWeights());
        outErased = predict(erasedMatrices);
    }

    @AfterAll
    void close() {
        if (be != null) be.close();
    }

    private float[] predict(Weights w) {
        return be.toHost(sd.unetModel().predict(be, w, latents, timesteps, context));
    }

    @ParameterizedTest(name = "rank {0}, {1}")
    @CsvSource({"full, F32", "full, F16", "8, F16", "4, F32"})
    void theAppliedLoraIsTheErasedModelWithinTheReportedResidual(String rank, String dtype, @TempDir Path tmp) throws Exception {
        LoraSettings settings = new LoraSettings(LoraSettings.parseRank(rank), DType.valueOf(dtype));
        Path file = tmp.resolve("esd-x.safetensors");
        new EsdOutput(be, sd, trainer.subset(), Map.of("esd.method", "xattn")).writeLora(file, settings);

        JsonNode residuals;
        Map<String, String> meta;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            meta = f.metadata();
            residuals = Json.mapper().readTree(meta.get("esd.lora.residuals"));
            // kohya keys only: down, up and alpha of each trained 2-D weight
            Set<String> expected = new TreeSet<>();
            for (String n : erasedMatrices.asMap().keySet()) {
                if (!trainer.subset().trained().contains(n) || !n.endsWith(".weight")) continue;
                String module = KohyaNames.DIFFUSERS.module(n);
                expected.addAll(List.of(module + ".lora_down.weight", module + ".lora_up.weight", module + ".alpha"));
                assertEquals(DType.valueOf(dtype), f.dtype(module + ".lora_up.weight"));
            }
            assertEquals(expected, new TreeSet<>(f.names()));
        }
        assertEquals("xattn", meta.get("esd.method"));
        assertEquals("networks.lora", meta.get("ss_network_module"));
        // the changed biases are reported with their true max |Δ|
        JsonNode unexpressed = Json.mapper().readTree(meta.get("esd.lora.unexpressed"));
        int biases = 0;
        for (var e : trainer.subset().trained().asMap().entrySet()) {
            if (!e.getKey().endsWith(".bias")) continue;
            float[] before = be.toHost(sd.unetWeights().get(e.getKey())), after = be.toHost(e.getValue());
            double max = 0;
            for (int i = 0; i < before.length; i++) max = Math.max(max, Math.abs((double) after[i] - before[i]));
            assertEquals(max, unexpressed.get(e.getKey()).asDouble(), 1e-12 * max, e.getKey());
            biases++;
        }
        assertEquals(biases, unexpressed.size());

        // apply to a fresh base model, as generate --lora does
        StableDiffusion fresh = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        int applied = LoraApplier.apply(be, fresh.unetWeights(), new LoraApplier.Spec(file, 1f));
        assertEquals(residuals.size(), applied);
        double worst = 0;
        for (var it = residuals.fields(); it.hasNext(); ) {
            var e = it.next();
            String name = e.getKey();
            double reported = e.getValue().get("residual").asDouble();
            worst = Math.max(worst, reported);
            float[] base = be.toHost(sd.unetWeights().get(name)), erased = be.toHost(erasedMatrices.get(name));
            float[] got = be.toHost(fresh.unetWeights().get(name));
            double diff = 0, delta = 0, norm = 0;
            for (int i = 0; i < got.length; i++) {
                diff += sq((double) got[i] - erased[i]);
                delta += sq((double) erased[i] - base[i]);
                norm += sq(got[i]);
            }
            // the applied weight is float32(W + up·down): one rounding, at most 2⁻²⁴ of each value, away from the
            // exact sum, whose distance to the erased weight is the reported residual times ‖ΔW‖
            double rounding = Math.scalb(Math.sqrt(norm), -24) / Math.sqrt(delta);
            assertEquals(reported, Math.sqrt(diff / delta), rounding * 1.01 + 1e-12, name);
            if (rank.equals("full")) assertTrue(reported <= (dtype.equals("F32") ? 6e-8 : Math.scalb(1.0, -11)), name + " " + reported);
        }
        assertEquals(worst, Double.parseDouble(meta.get("esd.lora.worst_residual")));

        float[] outLora = predict(fresh.unetWeights());
        double off = 0, effect = 0, maxAbs = 0;
        for (int i = 0; i < outLora.length; i++) {
            off += sq((double) outLora[i] - outErased[i]);
            effect += sq((double) outErased[i] - outBase[i]);
            maxAbs = Math.max(maxAbs, Math.abs(outLora[i] - outErased[i]));
        }
        double relative = Math.sqrt(off / effect);
        System.out.printf("rank %s %s: worst weight residual %.3e, UNet output off by %.3e of the erasure's effect (max abs %.2e)%n",
                rank, dtype, worst, relative, maxAbs);
        if (rank.equals("full") && dtype.equals("F32")) {
            assertTrue(maxAbs <= 1e-5, "max |Δ output| " + maxAbs);   // float rounding of the weights: the fixture's f32 level
        } else {
            assertTrue(relative <= worst, "output off by " + relative + " of the erasure's effect, worst weight residual " + worst);
        }
    }

    private static double sq(double x) { return x * x; }
}
