package esdnative.model.sdxl;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.io.Json;
import esdnative.model.ModelConfig;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.unet.UNetConfig;
import esdnative.model.vae.VaeConfig;
import esdnative.util.UserError;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A whole SDXL pipeline's architecture: the UNet (with text_time), the CLIP ViT-L text encoder, the OpenCLIP bigG
 * one with its projection, and the VAE; from a diffusers SDXL folder's configs or by name, and their config files.
 *
 * @param projectionDim text_encoder_2's projection_dim (the pooled embedding's width)
 */
public record SdxlConfig(UNetConfig unet, ClipTextConfig text, ClipTextConfig text2, int projectionDim, VaeConfig vae) {
    /** The built-in configs: a tiny one for tests and demos, SDXL base 1.0's full size. */
    public static final List<String> NAMES = List.of("sdxl-tiny", "sdxl");

    /** A built-in name, or null if {@code name} is none. */
    public static SdxlConfig named(String name) {
        return switch (name) {
            case "sdxl-tiny" -> tiny();
            // SDXL base 1.0: CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 (1280 wide, 32 layers, 20 heads, projection 1280)
            case "sdxl" -> new SdxlConfig(UNetConfig.sdxl(), ClipTextConfig.vitL14(),
                    new ClipTextConfig(49408, 1280, 5120, 32, 20, 77, "gelu", 1e-5f), 1280,
                    new VaeConfig(4, 3, List.of(128, 256, 512, 512), 2, 32, VAE_SCALING_FACTOR, true));
            default -> null;
        };
    }

    /**
     * SDXL's architecture shrunk as the tiny-sdxl-a fixture is (README-sdxl.md §1): UNet levels 24/48 (DownBlock2D, then
     * cross-attention with 2 transformer blocks and 4 heads of 12), context 16 + 24 = 40, text_time 8 → 68; text
     * encoders of 2 and 3 layers (quick_gelu, gelu) with projection 20; a 2-level VAE; 8 norm groups throughout.
     */
    private static SdxlConfig tiny() {
        UNetConfig unet = new UNetConfig(4, 4, 16, List.of(24, 48),
                List.of(UNetConfig.DOWN, UNetConfig.CROSS_ATTN_DOWN), List.of(UNetConfig.CROSS_ATTN_UP, UNetConfig.UP),
                List.of(2, 2), List.of(40, 40), List.of(2, 4), List.of(1, 2),
                8, 1e-5f, true, 0f, true, false, 1f, 3, 3, 96, new UNetConfig.TextTime(8, 68));
        ClipTextConfig text = new ClipTextConfig(49408, 16, 37, 2, 2, 77, "quick_gelu", 1e-5f);
        ClipTextConfig text2 = new ClipTextConfig(49408, 24, 53, 3, 3, 77, "gelu", 1e-5f);
        return new SdxlConfig(unet, text, text2, 20, new VaeConfig(4, 3, List.of(16, 32), 2, 8, VAE_SCALING_FACTOR, true));
    }

    /** SDXL's VAE latent scale (its VAE has SD's architecture). */
    private static final float VAE_SCALING_FACTOR = 0.13025f;

    /** The architecture a diffusers SDXL folder's unet/, text_encoder/, text_encoder_2/ and vae/ configs describe. */
    public static SdxlConfig fromFolder(Path dir) {
        Path text2 = require(dir.resolve("text_encoder_2/config.json"));
        int projection = Json.tree(text2).path("projection_dim").asInt(0);
        if (projection < 1) throw new UserError(text2 + ": projection_dim missing (a CLIPTextModelWithProjection)");
        return new SdxlConfig(UNetConfig.fromJson(require(dir.resolve("unet/config.json"))),
                ClipTextConfig.read(require(dir.resolve("text_encoder/config.json"))), ClipTextConfig.read(text2),
                projection, VaeConfig.fromJson(require(dir.resolve("vae/config.json"))));
    }

    private static Path require(Path p) {
        if (!Files.isRegularFile(p)) throw new UserError(p + " not found: an SDXL diffusers folder needs it");
        return p;
    }

    /**
     * The config files of a StableDiffusionXLPipeline folder, by relative path: model_index.json, each component's
     * config, the scheduler (SD's DDIM betas, which are SDXL base's) and both tokenizers' settings (the vocabulary and
     * merges are CLIP's, copied by the caller; tokenizer_2 pads with "!", as SDXL's does).
     */
    public Map<String, String> diffusersFiles() {
        Map<String, String> files = new LinkedHashMap<>(new ModelConfig(unet, text, vae).diffusersFiles());
        files.put("model_index.json", modelIndex());
        ObjectNode text2Json = tree(new ModelConfig(unet, text2, vae).diffusersFiles().get("text_encoder/config.json"));
        text2Json.putArray("architectures").add("CLIPTextModelWithProjection");
        text2Json.put("projection_dim", projectionDim);
        files.put("text_encoder_2/config.json", text2Json.toPrettyString() + "\n");
        ObjectNode vaeJson = tree(files.get("vae/config.json"));
        vaeJson.put("force_upcast", true);   // diffusers' SDXL VAE decodes in float32 (this engine always does)
        files.put("vae/config.json", vaeJson.toPrettyString() + "\n");
        files.put("tokenizer/tokenizer_config.json", tokenizerConfig("<|endoftext|>"));
        files.put("tokenizer_2/tokenizer_config.json", tokenizerConfig("!"));
        return files;
    }

    private static ObjectNode tree(String json) {
        try {
            return (ObjectNode) Json.mapper().readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a config written here does not parse", e);
        }
    }

    private static String modelIndex() {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "StableDiffusionXLPipeline");
        j.put("_diffusers_version", "0.21.4");
        j.put("force_zeros_for_empty_prompt", true);
        j.putArray("scheduler").add("diffusers").add("DDIMScheduler");
        j.putArray("text_encoder").add("transformers").add("CLIPTextModel");
        j.putArray("text_encoder_2").add("transformers").add("CLIPTextModelWithProjection");
        j.putArray("tokenizer").add("transformers").add("CLIPTokenizer");
        j.putArray("tokenizer_2").add("transformers").add("CLIPTokenizer");
        j.putArray("unet").add("diffusers").add("UNet2DConditionModel");
        j.putArray("vae").add("diffusers").add("AutoencoderKL");
        return j.toPrettyString() + "\n";
    }

    private static String tokenizerConfig(String pad) {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("tokenizer_class", "CLIPTokenizer");
        j.put("model_max_length", 77);
        j.put("bos_token", "<|startoftext|>");
        j.put("eos_token", "<|endoftext|>");
        j.put("unk_token", "<|endoftext|>");
        j.put("pad_token", pad);
        return j.toPrettyString() + "\n";
    }
}
