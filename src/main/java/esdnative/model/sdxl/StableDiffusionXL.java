package esdnative.model.sdxl;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.checkpoint.CompVisNames;
import esdnative.checkpoint.ExpectedTensors;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Vae;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeDecoder;
import esdnative.model.vae.VaeWeights;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;
import esdnative.util.UserError;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * A loaded Stable Diffusion XL model: the UNet (with the text_time added conditioning), both text encoders and
 * tokenizers, the scheduler's settings and the VAE decoder (SDXL's VAE is decoded in float32, which is what
 * diffusers' force_upcast asks of an fp16 pipeline; this engine computes in float32 throughout).
 *
 * @param source the diffusers folder or the single file
 */
public record StableDiffusionXL(Path source, UNetConfig unet, Weights unetWeights, SdxlTextEncoders text,
                                DdimConfig scheduler, Vae vae) {

    public UNet2DConditionModel unetModel() { return new UNet2DConditionModel(unet); }

    /** Pixels per latent cell (8 for SDXL's VAE). */
    public int vaeScaleFactor() { return vae.config().upscale(); }

    /** The default image size in pixels: the UNet's sample size times the VAE factor (1024 for SDXL base). */
    public int defaultResolution() { return unet.sampleSize() * vaeScaleFactor(); }

    /** Whether {@code folder}'s model_index.json names StableDiffusionXLPipeline. */
    public static boolean isSdxlFolder(Path folder) {
        Path index = folder.resolve("model_index.json");
        return Files.isRegularFile(index) && Json.tree(index).path("_class_name").asText().equals("StableDiffusionXLPipeline");
    }

    /**
     * Whether {@code model} is an SDXL model: a StableDiffusionXLPipeline folder, or a .safetensors single file with
     * SDXL's keys.
     */
    public static boolean isSdxl(Path model) {
        if (Files.isDirectory(model)) return isSdxlFolder(model);
        if (!model.getFileName().toString().endsWith(".safetensors") || !Files.isRegularFile(model)) return false;
        try (SafetensorsFile f = SafetensorsFile.open(model)) {
            return SdxlSingleFileNames.isSdxl(f.tensors().stream().map(TensorInfo::name).toList());
        }
    }

    /** The folder's model, or the single file's with {@code configDir}'s configs (see {@link #loadSingleFile}). */
    public static StableDiffusionXL load(Backend be, Path model, Path configDir) {
        return Files.isDirectory(model) ? loadFolder(be, model) : loadSingleFile(be, model, configDir);
    }

    /** What a command that runs SD 1.x / 2.x models only says of an SDXL model. */
    public static UserError notSupportedHere(Path model) {
        return new UserError(model + ": a Stable Diffusion XL model; this command does not run SDXL yet (SD 1.x / 2.x only)");
    }

    /**
     * A diffusers StableDiffusionXLPipeline folder: model_index.json, unet/, text_encoder/, text_encoder_2/,
     * tokenizer/, tokenizer_2/, scheduler/, vae/, each with its config and .safetensors weights.
     *
     * @throws UserError when a part is missing or does not match its config
     */
    public static StableDiffusionXL loadFolder(Backend be, Path dir) {
        try (SdxlTensors tensors = new SdxlTensors.Folder(dir)) {
            return load(be, dir, dir, tensors);
        }
    }

    /**
     * The original SDXL single file ({@code model.diffusion_model.*} with {@code label_emb}, {@code first_stage_model.*},
     * {@code conditioner.embedders.0.transformer.*}, {@code conditioner.embedders.1.model.*}) with the configs and
     * tokenizers of {@code configDir}, a diffusers SDXL folder (its weights are not read): no tensor holds the head
     * counts, the norm groups or the tokenizers.
     */
    public static StableDiffusionXL loadSingleFile(Backend be, Path file, Path configDir) {
        if (configDir == null) {
            throw new UserError(file + ": an SDXL single file needs a diffusers SDXL folder for its configs and "
                    + "tokenizers, and none was given");
        }
        requireSdxlFolder(configDir);
        UNetConfig unet = UNetConfig.fromJson(require(configDir.resolve("unet/config.json")));
        VaeConfig vae = VaeConfig.fromJson(require(configDir.resolve("vae/config.json")));
        var topology = topology(unet, vae);
        SafetensorsFile f = SafetensorsFile.open(file);
        try (SdxlTensors tensors = new SdxlTensors.SingleFile(f, topology)) {
            if (!SdxlSingleFileNames.isSdxl(f.tensors().stream().map(TensorInfo::name).toList())) {
                throw new UserError(file + ": not an SDXL single file (no conditioner.embedders.* or label_emb tensors)");
            }
            return load(be, file, configDir, tensors);
        }
    }

    /** The block layout the single file's names follow, from the UNet's and the VAE's configs. */
    public static CompVisNames.Topology topology(UNetConfig unet, VaeConfig vae) {
        boolean[] upAttention = new boolean[unet.levels()];
        for (int i = 0; i < upAttention.length; i++) upAttention[i] = unet.upBlockTypes().get(i).equals(UNetConfig.CROSS_ATTN_UP);
        return new CompVisNames.Topology(unet.levels(), unet.layersPerBlock().getFirst(), upAttention,
                vae.blockOutChannels().size(), vae.layersPerBlock());
    }

    /**
     * The UNet's architecture without loading any weight: from the folder's unet/config.json, or for a single file
     * from {@code configDir}'s.
     */
    public static UNetConfig unetConfig(Path model, Path configDir) {
        Path dir = Files.isDirectory(model) ? model : configDir;
        if (dir == null) throw new UserError(model + ": an SDXL single file needs a diffusers SDXL folder for its configs");
        requireSdxlFolder(dir);
        return UNetConfig.fromJson(require(dir.resolve("unet/config.json")));
    }

    private static void requireSdxlFolder(Path dir) {
        if (!isSdxlFolder(dir)) throw new UserError(dir + ": not a StableDiffusionXLPipeline folder (model_index.json)");
    }

    /** Every part, configured by {@code configDir}'s files, with its weights from {@code tensors}. */
    private static StableDiffusionXL load(Backend be, Path source, Path configDir, SdxlTensors tensors) {
        requireSdxlFolder(configDir);
        JsonNode index = Json.tree(configDir.resolve("model_index.json"));
        UNetConfig unetConfig = UNetConfig.fromJson(require(configDir.resolve("unet/config.json")));
        if (unetConfig.textTime() == null) {
            throw new UserError(configDir.resolve("unet/config.json") + ": an SDXL UNet needs addition_embed_type \"text_time\"");
        }
        // SDXL base's 2.57 billion parameters span two buffers of Weights
        var unetShapes = UNet2DConditionModel.parameterShapes(unetConfig);
        Weights unet = UNetWeights.load(be, unetConfig, tensors.shapes("unet", unetShapes.keySet()),
                name -> tensors.read("unet", name), tensors.describe("unet"));

        ClipTextConfig c1 = ClipTextConfig.read(require(configDir.resolve("text_encoder/config.json")));
        ClipTextModel text1 = new ClipTextModel(be, c1, clip(be, tensors, "text_encoder", TEXT_MODEL,
                ClipTextModel.parameterShapes(c1), "text encoder"));
        Path config2 = require(configDir.resolve("text_encoder_2/config.json"));
        ClipTextConfig c2 = ClipTextConfig.read(config2);
        int projection = Json.tree(config2).path("projection_dim").asInt(0);
        if (projection < 1) throw new UserError(config2 + ": projection_dim missing (a CLIPTextModelWithProjection)");
        ClipTextModelWithProjection text2 = new ClipTextModelWithProjection(new ClipTextModel(be, c2,
                clip(be, tensors, "text_encoder_2", TEXT_MODEL, ClipTextModel.parameterShapes(c2), "text encoder 2")),
                clip(be, tensors, "text_encoder_2", "", ClipTextModelWithProjection.projectionShapes(c2, projection),
                        "text encoder 2"), projection);
        SdxlTextEncoders text = new SdxlTextEncoders(text1, ClipTokenizer.load(configDir.resolve("tokenizer")), text2,
                ClipTokenizer.load(configDir.resolve("tokenizer_2")),
                index.path("force_zeros_for_empty_prompt").asBoolean(true));
        checkWidths(configDir, unetConfig, text);

        VaeConfig vaeConfig = VaeConfig.fromJson(require(configDir.resolve("vae/config.json")));
        Weights vae = VaeWeights.load(be, vaeConfig,
                tensors.shapes("vae", VaeDecoder.parameterShapes(vaeConfig).keySet()),
                name -> tensors.read("vae", name), tensors.describe("vae"));
        DdimConfig scheduler = DdimConfig.read(require(configDir.resolve("scheduler/scheduler_config.json")));
        return new StableDiffusionXL(source, unetConfig, unet, text, scheduler, new Vae(vaeConfig, vae));
    }

    private static final String TEXT_MODEL = "text_model.";

    /** A CLIP part whose names carry {@code prefix} in the component's tensors (the model declares them without). */
    private static Weights clip(Backend be, SdxlTensors tensors, String component, String prefix,
                                SequencedMap<String, int[]> shapes, String part) {
        Map<String, int[]> found = new LinkedHashMap<>();
        List<String> expected = shapes.keySet().stream().map(n -> prefix + n).toList();
        tensors.shapes(component, expected).forEach((name, shape) -> {
            if (name.startsWith(prefix)) found.put(name.substring(prefix.length()), shape);
        });
        ExpectedTensors.check(shapes, found, ExpectedTensors.Extras.IGNORED, tensors.describe(component), part);
        return Weights.load(be, shapes, name -> tensors.read(component, prefix + name));
    }

    /** The UNet's context and pooled widths must be the text encoders' (diffusers checks the latter too). */
    private static void checkWidths(Path dir, UNetConfig unet, SdxlTextEncoders text) {
        for (int dim : unet.crossAttentionDim()) {
            if (dim != text.contextDim()) {
                throw new UserError(dir + ": unet cross_attention_dim " + dim + " is not the text encoders' hidden sizes "
                        + "together (" + text.contextDim() + ")");
            }
        }
        if (unet.textTime().textEmbedDim() != text.textEncoder2().projectionDim()) {
            throw new UserError(dir + ": unet projection_class_embeddings_input_dim " + unet.textTime().inputDim()
                    + " is not text_encoder_2's projection_dim " + text.textEncoder2().projectionDim() + " + 6 × "
                    + unet.textTime().timeEmbedDim());
        }
    }

    private static Path require(Path p) {
        if (!Files.isRegularFile(p)) throw new UserError(p + " not found: an SDXL diffusers folder needs it");
        return p;
    }
}
