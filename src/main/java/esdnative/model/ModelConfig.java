package esdnative.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.util.UserError;
import esdnative.esd.DiffusersUNetConfig;
import esdnative.io.Json;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.unet.UNetConfig;
import esdnative.model.vae.VaeConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A whole Stable Diffusion pipeline's architecture: UNet, CLIP text encoder and AutoencoderKL configs, from a
 * diffusers folder's config files or by name, and their diffusers config.json texts.
 */
public record ModelConfig(UNetConfig unet, ClipTextConfig text, VaeConfig vae) {
    /** The built-in configs: tiny ones for tests, full-size ones for benchmarks. */
    public static final List<String> NAMES = List.of("sd14-tiny", "sd2-tiny", "sd14", "sd2");

    /** SD's scheduler (scaled-linear betas 0.00085..0.012 over 1000 steps), as a DDIM config. */
    private static final String SCHEDULER = """
            {
              "_class_name": "DDIMScheduler",
              "beta_end": 0.012,
              "beta_schedule": "scaled_linear",
              "beta_start": 0.00085,
              "clip_sample": false,
              "num_train_timesteps": 1000,
              "prediction_type": "epsilon",
              "set_alpha_to_one": false,
              "steps_offset": 1,
              "timestep_spacing": "leading"
            }
            """;

    /** A built-in name, or a diffusers folder (or its model_index.json) with unet/, text_encoder/ and vae/ configs. */
    public static ModelConfig of(String spec) {
        return switch (spec) {
            case "sd14-tiny" -> sd14Tiny();
            case "sd2-tiny" -> sd2Tiny();
            case "sd14" -> new ModelConfig(UNetConfig.sd14(), ClipTextConfig.vitL14(), VaeConfig.sd());
            // SD2.x's OpenCLIP ViT-H/14 text tower as transformers' CLIPTextModel holds it (23 of its 24 layers are used)
            case "sd2" -> new ModelConfig(UNetConfig.sd2(),
                    new ClipTextConfig(49408, 1024, 4096, 23, 16, 77, "gelu", 1e-5f), VaeConfig.sd());
            default -> fromFolder(spec);
        };
    }

    private static ModelConfig fromFolder(String spec) {
        Path p = Path.of(spec);
        if (Files.isRegularFile(p) && p.getFileName().toString().equals("model_index.json")) p = p.toAbsolutePath().getParent();
        if (!Files.isDirectory(p)) {
            throw new UserError("config '" + spec + "' is neither a diffusers folder nor one of " + String.join(", ", NAMES));
        }
        return new ModelConfig(UNetConfig.fromJson(require(p.resolve("unet/config.json"))),
                ClipTextConfig.read(require(p.resolve("text_encoder/config.json"))),
                VaeConfig.fromJson(require(p.resolve("vae/config.json"))));
    }

    private static Path require(Path p) {
        if (!Files.isRegularFile(p)) throw new UserError("config file " + p + " not found");
        return p;
    }

    /**
     * SD1.x's architecture shrunk: 2 levels of 32/64 channels, 8 heads, 768 → 64-wide context, a 2-layer text
     * encoder with 64-channel heads, a 2-level VAE; every size a multiple of SD's 32 norm groups, so a single file
     * of it loads from its shapes alone.
     */
    private static ModelConfig sd14Tiny() {
        UNetConfig unet = new UNetConfig(4, 4, 16, List.of(32, 64),
                List.of(UNetConfig.CROSS_ATTN_DOWN, UNetConfig.DOWN), List.of(UNetConfig.UP, UNetConfig.CROSS_ATTN_UP),
                List.of(1, 1), List.of(64, 64), List.of(8, 8), List.of(1, 1),
                32, 1e-5f, true, 0f, false, false, 1f, 3, 3, 128);
        ClipTextConfig text = new ClipTextConfig(49408, 64, 128, 2, 1, 77, "quick_gelu", 1e-5f);
        return new ModelConfig(unet, text, new VaeConfig(4, 3, List.of(32, 64), 1, 32, 0.18215f, true));
    }

    /** SD2.x's architecture shrunk: linear projections, 64-channel heads, upcast attention, a gelu text encoder. */
    private static ModelConfig sd2Tiny() {
        UNetConfig unet = new UNetConfig(4, 4, 16, List.of(64, 128),
                List.of(UNetConfig.CROSS_ATTN_DOWN, UNetConfig.DOWN), List.of(UNetConfig.UP, UNetConfig.CROSS_ATTN_UP),
                List.of(1, 1), List.of(64, 64), List.of(1, 2), List.of(1, 1),
                32, 1e-5f, true, 0f, true, true, 1f, 3, 3, 256);
        ClipTextConfig text = new ClipTextConfig(49408, 64, 128, 2, 1, 77, "gelu", 1e-5f);
        return new ModelConfig(unet, text, new VaeConfig(4, 3, List.of(32, 64), 1, 32, 0.18215f, true));
    }

    /** The config files of a diffusers pipeline folder, by relative path. */
    public Map<String, String> diffusersFiles() {
        return Map.of(
                "model_index.json", modelIndex(),
                "unet/config.json", DiffusersUNetConfig.json(unet),
                "text_encoder/config.json", textJson(),
                "vae/config.json", vaeJson(),
                "scheduler/scheduler_config.json", SCHEDULER);
    }

    private static String modelIndex() {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "StableDiffusionPipeline");
        j.put("_diffusers_version", "0.21.4");
        j.put("requires_safety_checker", false);
        j.putArray("scheduler").add("diffusers").add("DDIMScheduler");
        j.putArray("text_encoder").add("transformers").add("CLIPTextModel");
        j.putArray("tokenizer").add("transformers").add("CLIPTokenizer");
        j.putArray("unet").add("diffusers").add("UNet2DConditionModel");
        j.putArray("vae").add("diffusers").add("AutoencoderKL");
        return j.toPrettyString() + "\n";
    }

    private String textJson() {
        ObjectNode j = Json.mapper().createObjectNode();
        j.putArray("architectures").add("CLIPTextModel");
        j.put("model_type", "clip_text_model");
        j.put("vocab_size", text.vocabSize());
        j.put("hidden_size", text.hiddenSize());
        j.put("intermediate_size", text.intermediateSize());
        j.put("num_hidden_layers", text.numHiddenLayers());
        j.put("num_attention_heads", text.numAttentionHeads());
        j.put("max_position_embeddings", text.maxPositionEmbeddings());
        j.put("hidden_act", text.hiddenAct());
        j.put("layer_norm_eps", text.layerNormEps());
        j.put("projection_dim", text.hiddenSize());
        j.put("bos_token_id", 49406);
        j.put("eos_token_id", 49407);
        j.put("pad_token_id", 1);
        j.put("torch_dtype", "float32");
        return j.toPrettyString() + "\n";
    }

    private String vaeJson() {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "AutoencoderKL");
        j.put("_diffusers_version", "0.21.4");
        j.put("act_fn", "silu");
        j.put("in_channels", vae.outChannels());
        j.put("out_channels", vae.outChannels());
        j.put("latent_channels", vae.latentChannels());
        vae.blockOutChannels().forEach(j.putArray("block_out_channels")::add);
        var down = j.putArray("down_block_types");
        var up = j.putArray("up_block_types");
        for (int i = 0; i < vae.blockOutChannels().size(); i++) {
            down.add("DownEncoderBlock2D");
            up.add("UpDecoderBlock2D");
        }
        j.put("layers_per_block", vae.layersPerBlock());
        j.put("norm_num_groups", vae.normNumGroups());
        j.put("mid_block_add_attention", vae.midBlockAttention());
        j.put("scaling_factor", vae.scalingFactor());
        j.put("sample_size", unet.sampleSize() * vae.upscale());
        return j.toPrettyString() + "\n";
    }
}
