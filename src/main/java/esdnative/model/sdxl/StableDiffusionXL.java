package esdnative.model.sdxl;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.backend.Backend;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.Vae;
import esdnative.model.Weights;
import esdnative.model.clip.ClipCheckpoint;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.clip.ClipTextModelWithProjection;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeWeights;
import esdnative.sched.DdimConfig;
import esdnative.text.ClipTokenizer;
import esdnative.util.UserError;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A loaded Stable Diffusion XL model: the UNet (with the text_time added conditioning), both text encoders and
 * tokenizers, the scheduler's settings and the VAE decoder (SDXL's VAE is decoded in float32, which is what
 * diffusers' force_upcast asks of an fp16 pipeline; this engine computes in float32 throughout).
 *
 * @param source the diffusers folder
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
        if (!isSdxlFolder(dir)) throw new UserError(dir + ": not a StableDiffusionXLPipeline folder (model_index.json)");
        JsonNode index = Json.tree(dir.resolve("model_index.json"));
        UNetConfig unetConfig = UNetConfig.fromJson(require(dir.resolve("unet/config.json")));
        if (unetConfig.textTime() == null) {
            throw new UserError(dir.resolve("unet/config.json") + ": an SDXL UNet needs addition_embed_type \"text_time\"");
        }
        Weights unet = read(dir.resolve("unet/diffusion_pytorch_model.safetensors"),
                (shapes, f) -> UNetWeights.load(be, unetConfig, shapes, f::readFloats, f.path().toString()));

        ClipTextConfig c1 = ClipTextConfig.read(require(dir.resolve("text_encoder/config.json")));
        ClipTextModel text1 = read(dir.resolve("text_encoder/model.safetensors"), (shapes, f) -> new ClipTextModel(be, c1,
                ClipCheckpoint.load(be, ClipTextModel.parameterShapes(c1), f, "text_model.", "text encoder")));
        Path config2 = require(dir.resolve("text_encoder_2/config.json"));
        ClipTextConfig c2 = ClipTextConfig.read(config2);
        int projection = Json.tree(config2).path("projection_dim").asInt(0);
        if (projection < 1) throw new UserError(config2 + ": projection_dim missing (a CLIPTextModelWithProjection)");
        ClipTextModelWithProjection text2 = read(dir.resolve("text_encoder_2/model.safetensors"),
                (shapes, f) -> new ClipTextModelWithProjection(new ClipTextModel(be, c2,
                        ClipCheckpoint.load(be, ClipTextModel.parameterShapes(c2), f, "text_model.", "text encoder 2")),
                        ClipCheckpoint.load(be, ClipTextModelWithProjection.projectionShapes(c2, projection), f, "",
                                "text encoder 2"), projection));
        SdxlTextEncoders text = new SdxlTextEncoders(text1, ClipTokenizer.load(dir.resolve("tokenizer")), text2,
                ClipTokenizer.load(dir.resolve("tokenizer_2")), index.path("force_zeros_for_empty_prompt").asBoolean(true));
        checkWidths(dir, unetConfig, text);

        VaeConfig vaeConfig = VaeConfig.fromJson(require(dir.resolve("vae/config.json")));
        Weights vae = read(dir.resolve("vae/diffusion_pytorch_model.safetensors"),
                (shapes, f) -> VaeWeights.load(be, vaeConfig, shapes, f::readFloats, f.path().toString()));
        DdimConfig scheduler = DdimConfig.read(require(dir.resolve("scheduler/scheduler_config.json")));
        return new StableDiffusionXL(dir, unetConfig, unet, text, scheduler, new Vae(vaeConfig, vae));
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

    private interface Reader<T> {
        T read(Map<String, int[]> shapes, SafetensorsFile file);
    }

    /** Opens a component's safetensors file and reads the part from it (every tensor's name → shape, and the file). */
    private static <T> T read(Path file, Reader<T> reader) {
        require(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, int[]> shapes = new LinkedHashMap<>();
            for (TensorInfo t : f.tensors()) shapes.put(t.name(), t.intShape());
            return reader.read(shapes, f);
        }
    }

    private static Path require(Path p) {
        if (!Files.isRegularFile(p)) throw new UserError(p + " not found: an SDXL diffusers folder needs it");
        return p;
    }
}
