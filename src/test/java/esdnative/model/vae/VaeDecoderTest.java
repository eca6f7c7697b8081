package esdnative.model.vae;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.testing.FixtureWeights;
import esdnative.testing.Goldens;
import esdnative.util.UserError;
import esdnative.io.Npy;
import esdnative.io.NpyArray;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The VAE decoder against diffusers 0.21.4 AutoencoderKL.decode on the tiny fixture VAE. */
class VaeDecoderTest {
    private final Backend be = new CpuBackend();

    @Test
    void decodesLikeDiffusers() throws IOException {
        VaeConfig config = VaeConfig.fromJson(Fixtures.path("tiny-sd-a/vae/config.json"));
        assertEquals(0.18215f, config.scalingFactor());
        checkDecoding(be, config);
    }

    /** Both decode goldens on a backend. */
    static void checkDecoding(Backend be, VaeConfig config) throws IOException {
        Weights p = FixtureWeights.vae(be, config, Fixtures.path("tiny-sd-a"));
        VaeDecoder vae = new VaeDecoder(config);
        JsonNode manifest = new ObjectMapper().readTree(Fixtures.golden("manifest.json").toFile()).get("files");
        check(be, vae, p, manifest, "vae_decode_in_latents.npy", "vae_decode_out_image");
        check(be, vae, p, manifest, "pipeline_out_latents.npy", "vae_decoded_image");
    }

    /** |ours - golden| ≤ the manifest's suggested_atol (10× the golden's own float32-vs-float64 error). */
    private static void check(Backend be, VaeDecoder vae, Weights p, JsonNode manifest, String input, String key) {
        NpyArray in = Npy.read(Fixtures.golden(input));
        Tensor image = vae.decode(be, p, be.fromHost(in.floats(), in.shape()));
        NpyArray golden = Npy.read(Fixtures.golden(manifest.get(key).get("file").asText()));
        assertArrayEquals(golden.shape(), image.shape());
        Goldens.assertClose(key, golden.floats(), be.toHost(image), manifest.get(key).get("f32_vs_f64").get("suggested_atol").asDouble());
    }

    @Test
    void unsupportedVaeConfigsAreUserErrors(@TempDir Path dir) throws IOException {
        String tiny = Files.readString(Fixtures.path("tiny-sd-a/vae/config.json"));
        Path bad = dir.resolve("config.json");
        Files.writeString(bad, tiny.replace("\"UpDecoderBlock2D\"", "\"AttnUpDecoderBlock2D\""));
        UserError e = assertThrows(UserError.class, () -> VaeConfig.fromJson(bad));
        assertTrue(e.getMessage().contains("up_block_types") && e.getMessage().contains(bad.toString()), e.getMessage());
        Files.writeString(bad, tiny.replace("\"norm_num_groups\": 8", "\"norm_num_groups\": 5"));
        assertThrows(UserError.class, () -> VaeConfig.fromJson(bad));
    }

    @Test
    void sdDecoderHasTheKnownParameterCount() {
        long n = 0;
        for (int[] shape : VaeDecoder.parameterShapes(VaeConfig.sd()).values()) n += Tensor.sizeOf(shape);
        // the decoder-only VAE parameter buffer of buddy-compiler/buddy-mlir's Stable Diffusion example
        assertEquals(49_490_199L, n);
    }

    @Test
    void legacyAttentionNamesAreAcceptedAndStrayDecoderTensorsRefused() {
        VaeConfig config = VaeConfig.fromJson(Fixtures.path("tiny-sd-a/vae/config.json"));
        Map<String, int[]> shapes = new LinkedHashMap<>(VaeDecoder.parameterShapes(config));
        String attn = "decoder.mid_block.attentions.0.";
        shapes.put(attn + "query.weight", shapes.remove(attn + "to_q.weight"));
        shapes.put(attn + "proj_attn.bias", shapes.remove(attn + "to_out.0.bias"));
        shapes.put("encoder.conv_in.weight", new int[] {32, 3, 3, 3});
        Weights w = VaeWeights.load(be, config, shapes, name -> new float[(int) Tensor.sizeOf(shapes.get(name))], "f");
        assertEquals(VaeDecoder.parameterShapes(config).size(), w.asMap().size());

        shapes.put("decoder.mid_block.attentions.0.extra.weight", new int[] {1});
        UserError e = assertThrows(UserError.class, () -> VaeWeights.load(be, config, shapes, n -> null, "f"));
        assertTrue(e.getMessage().contains("unexpected decoder.mid_block.attentions.0.extra.weight"), e.getMessage());
    }
}
