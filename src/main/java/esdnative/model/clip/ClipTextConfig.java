package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;
import esdnative.io.Json;

import java.nio.file.Path;

/**
 * transformers' CLIPTextConfig: the shape of the text encoder, from a diffusers {@code text_encoder/config.json}.
 *
 * @param hiddenAct "quick_gelu" (SD1.x, OpenAI CLIP ViT-L/14) or "gelu" (SD2.x, OpenCLIP ViT-H/14)
 */
public record ClipTextConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
                             int numAttentionHeads, int maxPositionEmbeddings, String hiddenAct, float layerNormEps) {

    public ClipTextConfig {
        if (vocabSize < 1 || hiddenSize < 1 || intermediateSize < 1 || numHiddenLayers < 0
                || numAttentionHeads < 1 || maxPositionEmbeddings < 1) {
            throw new UserError("text encoder config: sizes must be positive");
        }
        if (hiddenSize % numAttentionHeads != 0) {
            throw new UserError("text encoder config: hidden_size " + hiddenSize + " is not a multiple of num_attention_heads "
                    + numAttentionHeads);
        }
        if (!hiddenAct.equals("quick_gelu") && !hiddenAct.equals("gelu")) {
            throw new UserError("text encoder config: hidden_act '" + hiddenAct + "' is not supported (quick_gelu, gelu)");
        }
    }

    /** OpenAI CLIP ViT-L/14's text tower, Stable Diffusion 1.x's text encoder. */
    public static ClipTextConfig vitL14() {
        return new ClipTextConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5f);
    }

    public int headDim() { return hiddenSize / numAttentionHeads; }

    /** Reads config.json; absent keys take CLIPTextConfig's defaults (a full CLIPConfig's text_config is used). */
    public static ClipTextConfig read(Path file) {
        JsonNode json = Json.tree(file);
        if (json.has("text_config")) json = json.get("text_config");
        return new ClipTextConfig(
                json.path("vocab_size").asInt(49408),
                json.path("hidden_size").asInt(512),
                json.path("intermediate_size").asInt(2048),
                json.path("num_hidden_layers").asInt(12),
                json.path("num_attention_heads").asInt(8),
                json.path("max_position_embeddings").asInt(77),
                json.path("hidden_act").asText("quick_gelu"),
                (float) json.path("layer_norm_eps").asDouble(1e-5));
    }
}
