package esdnative.lora;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.io.DType;
import esdnative.io.Json;
import esdnative.io.Npy;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.model.Weights;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Random;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LoRA files for SDXL on tiny-sdxl-a. The "erased" model is a copy of tiny-sdxl-a whose attn2 to_q/to_k/to_v/to_out.0
 * weights (the ESD-x subset, 4 per transformer block) are moved by a rank-3 change plus a small full-rank one, so that
 * rank 8 leaves a measurable residual on the 24×24 and 24×40 projections (as ESD-x's full-rank Adam steps do) while
 * rank full is exact; biases are untouched, so the LoRA can carry the whole change. {@code weights extract-lora}
 * writes it with SDXL's kohya names; applied to a fresh tiny-sdxl-a as {@code generate --lora} does, the UNet's
 * output with SDXL's added conditioning (the fixture's UNet inputs: pooled text embeddings and time ids) is the
 * erased model's within the reported residual, and to float rounding at full rank.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LoraTinySdxlTest {
    private static final Path MODEL = Fixtures.path("tiny-sdxl-a");
    private static final Path SINGLE_FILE = Fixtures.path("tiny-sdxl-a-single-file.safetensors");

    private Path tmp, erasedDir;
    private Set<String> changed;
    private Backend be;
    private StableDiffusionXL base;
    private Tensor latents, context;
    private UNet2DConditionModel.TextTimeInputs textTime;
    private float[] timesteps, outBase, outErased;

    @BeforeAll
    void makeErasedCopy(@TempDir Path dir) throws IOException {
        tmp = dir;
        erasedDir = tmp.resolve("erased");
        try (Stream<Path> files = Files.walk(MODEL)) {
            for (Path p : files.toList()) {
                Path target = erasedDir.resolve(MODEL.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else Files.copy(p, target);
            }
        }
        Path unetFile = erasedDir.resolve("unet/diffusion_pytorch_model.safetensors");
        SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
        changed = new TreeSet<>();
        Random random = new Random(18);
        try (SafetensorsFile f = SafetensorsFile.open(MODEL.resolve("unet/diffusion_pytorch_model.safetensors"))) {
            for (String n : f.names()) {
                float[] w = f.readFloats(n);
                if (n.matches(".*\\.attn2\\.(to_q|to_k|to_v|to_out\\.0)\\.weight")) {
                    perturb(w, (int) f.shape(n)[0], (int) f.shape(n)[1], random);
                    changed.add(n);
                }
                entries.put(n, SafetensorsWriter.Entry.floats(DType.F32, f.shape(n), w));
            }
        }
        Files.delete(unetFile);
        SafetensorsWriter.write(unetFile, entries, java.util.Map.of());

        be = new CpuBackend();
        base = StableDiffusionXL.loadFolder(be, MODEL);
        latents = TinySdxl.tensor(be, "unet_in_latents");
        context = TinySdxl.tensor(be, "unet_in_context");
        textTime = new UNet2DConditionModel.TextTimeInputs(TinySdxl.tensor(be, "unet_in_text_embeds"),
                TinySdxl.npy("unet_in_time_ids").floats());
        long[] t = TinySdxl.npy("unet_in_timesteps").longs();
        timesteps = new float[] {t[0], t[1]};
        outBase = predict(base.unetWeights());
        outErased = predict(StableDiffusionXL.loadFolder(be, erasedDir).unetWeights());
    }

    /**
     * W += 5e-2·(a rank-3 product)/√n + 5e-4·noise, [m, n] row-major: large enough that the change's effect on the
     * UNet output stands well above the output's float32 rounding.
     */
    private static void perturb(float[] w, int m, int n, Random random) {
        double[][] left = new double[3][m], right = new double[3][n];
        for (int r = 0; r < 3; r++) {
            for (int i = 0; i < m; i++) left[r][i] = random.nextGaussian();
            for (int j = 0; j < n; j++) right[r][j] = random.nextGaussian();
        }
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double d = 5e-4 * random.nextGaussian();
                for (int r = 0; r < 3; r++) d += 5e-2 * left[r][i] * right[r][j] / Math.sqrt(n);
                w[i * n + j] = (float) (w[i * n + j] + d);
            }
        }
    }

    @AfterAll
    void close() {
        if (be != null) be.close();
    }

    private float[] predict(Weights w) {
        return be.toHost(base.unetModel().predict(be, w, latents, timesteps, context, textTime));
    }

    @Test
    void sdxlModulesAreNamedByTheOriginalLayout() {
        // real SDXL base: the names sd-scripts' SDXL UNet gives (its modules are the original sgm layout)
        var sdxlNames = UNet2DConditionModel.parameterShapes(UNetConfig.sdxl()).keySet();
        KohyaNames sdxl = KohyaNames.forUnet(sdxlNames);
        assertEquals("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
                sdxl.module("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
        assertEquals("lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_out_0",
                sdxl.module("down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_out.0.weight"));
        assertEquals("lora_unet_middle_block_1_transformer_blocks_3_attn2_to_v",
                sdxl.module("mid_block.attentions.0.transformer_blocks.3.attn2.to_v.weight"));
        assertEquals("lora_unet_output_blocks_2_1_proj_in", sdxl.module("up_blocks.0.attentions.2.proj_in.weight"));
        assertEquals("lora_unet_output_blocks_5_1_transformer_blocks_1_ff_net_0_proj",
                sdxl.module("up_blocks.1.attentions.2.transformer_blocks.1.ff.net.0.proj.weight"));
        // an SD UNet keeps the diffusers paths
        assertSame(KohyaNames.DIFFUSERS, KohyaNames.forUnet(UNet2DConditionModel.parameterShapes(UNetConfig.sd14()).keySet()));
    }

    @Test
    void tinySdxlModuleNamesAreItsSingleFileKeys() {
        // every UNet weight: lora_unet_ + its key in the fixture's single file (diffusers' own conversion script)
        JsonNode keyMap = Json.tree(Fixtures.path("tiny-sdxl-a-single-file.safetensors.conversion.json")).get("key_map");
        KohyaNames naming = KohyaNames.forUnet(base.unetWeights().asMap().keySet());
        int checked = 0;
        for (String n : base.unetWeights().asMap().keySet()) {
            if (!n.endsWith(".weight")) continue;
            String key = keyMap.get("unet/" + n).asText();
            String expected = "lora_unet_" + key.substring("model.diffusion_model.".length(), key.length() - ".weight".length()).replace('.', '_');
            assertEquals(expected, naming.module(n), n);
            checked++;
        }
        assertTrue(checked > 100, "UNet weights checked: " + checked);
    }

    @ParameterizedTest(name = "rank {0}, {1}")
    @CsvSource({"full, fp32", "full, fp16", "8, fp16"})
    void theAppliedLoraIsTheErasedModelWithinTheReportedResidual(String rank, String dtype) throws IOException {
        Path file = tmp.resolve("xl-" + rank + "-" + dtype + ".safetensors");
        assertEquals(0, Main.run("weights", "extract-lora", MODEL.toString(), erasedDir.toString(), file.toString(),
                "--rank", rank, "--dtype", dtype));
        KohyaNames naming = KohyaNames.forUnet(base.unetWeights().asMap().keySet());
        double worst;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Set<String> expected = new TreeSet<>();
            for (String n : changed) {
                String module = naming.module(n);
                assertTrue(module.startsWith("lora_unet_input_blocks_") || module.startsWith("lora_unet_middle_block_")
                        || module.startsWith("lora_unet_output_blocks_"), module);
                expected.addAll(java.util.List.of(module + ".lora_down.weight", module + ".lora_up.weight", module + ".alpha"));
            }
            assertEquals(expected, new TreeSet<>(f.names()));
            worst = Double.parseDouble(f.metadata().get("esd.lora.worst_residual"));
            assertEquals("{}", f.metadata().get("esd.lora.unexpressed"));
        }
        Weights fresh = StableDiffusionXL.loadFolder(be, MODEL).unetWeights();
        assertEquals(changed.size(), LoraApplier.apply(be, fresh, new LoraApplier.Spec(file, 1f)));
        float[] outLora = predict(fresh);
        double off = 0, effect = 0, maxAbs = 0, norm = 0;
        for (int i = 0; i < outLora.length; i++) {
            off += sq((double) outLora[i] - outErased[i]);
            effect += sq((double) outErased[i] - outBase[i]);
            norm += sq(outErased[i]);
            maxAbs = Math.max(maxAbs, Math.abs(outLora[i] - outErased[i]));
        }
        double relative = Math.sqrt(off / effect);
        // the UNet's own float32 rounding, relative to the change's effect: 10× the manifest's float32-vs-float64 rel_l2
        double rounding = 10 * TinySdxl.tolerance("unet_eps", "rel_l2") * Math.sqrt(norm / effect);
        System.out.printf("SDXL rank %s %s: %d modules, worst weight residual %.3e, UNet output off by %.3e of the change's effect (max abs %.2e; float32 level %.1e)%n",
                rank, dtype, changed.size(), worst, relative, maxAbs, rounding);
        assertTrue(effect > 0);
        if (rank.equals("full")) {
            assertTrue(worst <= (dtype.equals("fp32") ? 6e-8 : Math.scalb(1.0, -11)), "worst residual " + worst);
        } else {
            assertTrue(worst > 1e-3, "rank 8 of a full-rank change leaves a residual: " + worst);
        }
        if (rank.equals("full") && dtype.equals("fp32")) {
            assertTrue(maxAbs <= TinySdxl.tolerance("unet_eps", "suggested_atol"), "max |Δ output| " + maxAbs);
        } else {
            assertTrue(relative <= worst + rounding, "output off by " + relative + " of the change's effect, worst weight residual "
                    + worst + ", float32 level " + rounding);
        }
    }

    @Test
    void theSingleFileGivesTheSameLoraAndGenerateAppliesIt() {
        Path fromFolder = tmp.resolve("folder.safetensors"), fromSingle = tmp.resolve("single.safetensors");
        String[] options = {"--rank", "full", "--dtype", "fp32"};
        assertEquals(0, Main.run(concat(new String[] {"weights", "extract-lora", MODEL.toString(), erasedDir.toString(), fromFolder.toString()}, options)));
        assertEquals(0, Main.run(concat(new String[] {"weights", "extract-lora", SINGLE_FILE.toString(), erasedDir.toString(), fromSingle.toString()}, options)));
        try (SafetensorsFile a = SafetensorsFile.open(fromFolder); SafetensorsFile b = SafetensorsFile.open(fromSingle)) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) assertEquals(-1, a.raw(n).mismatch(b.raw(n)), n);
        }
        // generate: tiny-sdxl-a with the LoRA samples as the erased copy does
        Path viaLora = tmp.resolve("lora.npy"), viaErased = tmp.resolve("erased.npy");
        String[] gen = {"generate", "--prompt", "a photo of a cat", "--steps", "2", "--seed", "3", "--backend", "cpu"};
        assertEquals(0, Main.run(concat(gen, "--model", MODEL.toString(), "--lora", fromFolder + ":1", "--output",
                tmp.resolve("a.png").toString(), "--save-latents", viaLora.toString())));
        assertEquals(0, Main.run(concat(gen, "--model", erasedDir.toString(), "--output", tmp.resolve("b.png").toString(),
                "--save-latents", viaErased.toString())));
        float[] x = Npy.read(viaLora).floats(), y = Npy.read(viaErased).floats();
        // the weights differ by float rounding (W + up·down vs the erased W): the pipeline's float32 level, from the manifest
        double atol = TinySdxl.tolerance("pipeline_out_latents", "suggested_atol");
        for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], atol, "latent " + i);
    }

    @Test
    void theInMemoryPathNamesSdxlModulesAsExtractLoraDoes() {
        // what train/uce --format lora call (EsdOutput.writeLora): the base UNet's weights tell the naming
        Path viaCommand = tmp.resolve("command.safetensors"), inMemory = tmp.resolve("memory.safetensors");
        assertEquals(0, Main.run("weights", "extract-lora", MODEL.toString(), erasedDir.toString(), viaCommand.toString(), "--rank", "4"));
        Weights erased = StableDiffusionXL.loadFolder(be, erasedDir).unetWeights();
        LoraExtraction.Result result = LoraExtraction.extract(LoraExtraction.Pair.of(be, base.unetWeights(), erased),
                new LoraSettings(4, DType.F16));
        LoraWriter.write(inMemory, result, MODEL, java.util.Map.of());
        try (SafetensorsFile a = SafetensorsFile.open(viaCommand); SafetensorsFile b = SafetensorsFile.open(inMemory)) {
            assertEquals(a.names(), b.names());
            for (String n : a.names()) assertEquals(-1, a.raw(n).mismatch(b.raw(n)), n);
        }
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static double sq(double x) { return x * x; }
}
