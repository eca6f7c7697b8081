package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;

/**
 * transformers' CLIPVisionConfig: the shape of a CLIP image tower (ViT). Absent keys take CLIPVisionConfig's
 * defaults, as transformers does for a composite config.json that spells out only what differs.
 *
 * @param hiddenAct "quick_gelu" (OpenAI CLIP) or "gelu"
 */
public record ClipVisionConfig(int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                               int numChannels, int imageSize, int patchSize, String hiddenAct, float layerNormEps) {

    public ClipVisionConfig {
        if (hiddenSize < 1 || intermediateSize < 1 || numHiddenLayers < 0 || numAttentionHeads < 1 || numChannels < 1
                || imageSize < 1 || patchSize < 1) {
            throw new UserError("vision config: sizes must be positive");
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new UserError("vision config: hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (imageSize % patchSize != 0) {
            throw new UserError("vision config: image_size " + imageSize + " is not a multiple of patch_size " + patchSize);
        }
        if (!hiddenAct.equals("quick_gelu") && !hiddenAct.equals("gelu")) {
            throw new UserError("vision config: hidden_act '" + hiddenAct + "' is not supported (quick_gelu, gelu)");
        }
    }

    /** OpenAI CLIP ViT-L/14's image tower (openai/clip-vit-large-patch14; also SD 1.x's safety checker). */
    public static ClipVisionConfig vitL14() {
        return new ClipVisionConfig(1024, 4096, 24, 16, 3, 224, 14, "quick_gelu", 1e-5f);
    }

    /** Patches per side. */
    public int gridSize() { return imageSize / patchSize; }

    /** Patches plus the class token. */
    public int tokens() { return gridSize() * gridSize() + 1; }

    /** The {@code vision_config} object of a CLIPConfig (or a CLIPVisionConfig itself). */
    public static ClipVisionConfig fromJson(JsonNode json) {
        return new ClipVisionConfig(
                json.path("hidden_size").asInt(768),
                json.path("intermediate_size").asInt(3072),
                json.path("num_hidden_layers").asInt(12),
                json.path("num_attention_heads").asInt(12),
                json.path("num_channels").asInt(3),
                json.path("image_size").asInt(224),
                json.path("patch_size").asInt(32),
                json.path("hidden_act").asText("quick_gelu"),
                (float) json.path("layer_norm_eps").asDouble(1e-5));
    }

    ClipEncoder encoder() {
        return new ClipEncoder(hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, hiddenAct, layerNormEps,
                false);
    }
}
