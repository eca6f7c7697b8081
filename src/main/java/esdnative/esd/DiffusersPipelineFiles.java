package esdnative.esd;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.io.Json;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.clip.ClipTextConfig;
import esdnative.model.vae.VaeConfig;
import esdnative.sched.DdimConfig;
import esdnative.checkpoint.CompVisNames.Component;
import esdnative.checkpoint.ModelWeights;
import esdnative.checkpoint.TensorEntries;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * Everything of a diffusers pipeline folder but the UNet, for a single-file input: the text encoder and VAE it
 * holds (diffusers names, bytes and dtypes as they were), their configs, the scheduler and tokenizer, and a
 * model_index.json naming them, so that {@code StableDiffusionPipeline.from_pretrained} loads the folder. Configs come
 * from {@code --config}'s folder where it has them, else from what the file's shapes imply; the tokenizer from
 * {@code --tokenizer} (or where the loader found it).
 */
final class DiffusersPipelineFiles {
    private static final String DIFFUSERS_VERSION = "0.21.4";

    private DiffusersPipelineFiles() {}

    static void write(Path dir, StableDiffusion model, Path configDir, Path tokenizerDir) throws IOException {
        ObjectNode index = Json.mapper().createObjectNode();
        index.put("_class_name", "StableDiffusionPipeline");
        index.put("_diffusers_version", DIFFUSERS_VERSION);
        components(index, "unet", "diffusers", "UNet2DConditionModel");
        ModelWeights w = model.checkpoint();   // the handle the model was loaded from
        for (Component c : List.of(Component.TEXT_ENCODER, Component.VAE)) {
            if (!w.components().contains(c) || w.names(c).isEmpty()) continue;
            SequencedMap<String, Entry> entries = new LinkedHashMap<>();
            for (String name : w.names(c)) {
                ModelWeights.Source s = w.source(c, name);
                entries.put(name, TensorEntries.of(s.file(), s.name(), w.shape(c, name), null));
            }
            Path folder = Files.createDirectories(dir.resolve(c.folder()));
            String file = c == Component.TEXT_ENCODER ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
            SafetensorsWriter.write(folder.resolve(file), entries, Map.of("format", "pt"));
            Path given = configDir == null ? null : configDir.resolve(c.folder()).resolve("config.json");
            if (given != null && Files.isRegularFile(given)) {
                copy(given, folder.resolve("config.json"));
            } else {
                Files.writeString(folder.resolve("config.json"), c == Component.TEXT_ENCODER
                        ? textEncoderJson(model.textEncoder().config()) : vaeJson(ModelLoader.vaeConfig(model, configDir), model));
            }
            if (c == Component.TEXT_ENCODER) components(index, "text_encoder", "transformers", "CLIPTextModel");
            else components(index, "vae", "diffusers", "AutoencoderKL");
        }
        Path scheduler = Files.createDirectories(dir.resolve("scheduler"));
        Path givenScheduler = configDir == null ? null : configDir.resolve("scheduler/scheduler_config.json");
        if (givenScheduler != null && Files.isRegularFile(givenScheduler)) copy(givenScheduler, scheduler.resolve("scheduler_config.json"));
        else Files.writeString(scheduler.resolve("scheduler_config.json"), schedulerJson(model.scheduler()));
        components(index, "scheduler", "diffusers", "DDIMScheduler");
        writeTokenizer(dir.resolve("tokenizer"), model, configDir, tokenizerDir);
        components(index, "tokenizer", "transformers", "CLIPTokenizer");
        // no safety checker: the pipeline loads without one when told so
        index.putArray("safety_checker").addNull().addNull();
        index.putArray("feature_extractor").addNull().addNull();
        index.put("requires_safety_checker", false);
        Files.writeString(dir.resolve("model_index.json"), index.toPrettyString() + "\n");
    }

    private static void components(ObjectNode index, String name, String library, String className) {
        index.putArray(name).add(library).add(className);
    }

    /** vocab.json and merges.txt with the tokenizer's settings (model_max_length: without it the pipeline pads to 10³⁰). */
    private static void writeTokenizer(Path to, StableDiffusion model, Path configDir, Path tokenizerDir) throws IOException {
        Path from = ModelLoader.findTokenizer(tokenizerDir,
                configDir != null ? configDir : model.source().toAbsolutePath().getParent());
        Files.createDirectories(to);
        for (String f : List.of("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")) {
            if (Files.isRegularFile(from.resolve(f))) copy(from.resolve(f), to.resolve(f));
        }
        if (!Files.exists(to.resolve("tokenizer_config.json"))) {
            ObjectNode t = Json.mapper().createObjectNode();
            t.put("tokenizer_class", "CLIPTokenizer");
            t.put("model_max_length", model.tokenizer().maxLength());
            t.put("bos_token", "<|startoftext|>");
            t.put("eos_token", "<|endoftext|>");
            t.put("unk_token", "<|endoftext|>");
            t.put("pad_token", "<|endoftext|>");
            Files.writeString(to.resolve("tokenizer_config.json"), t.toPrettyString() + "\n");
        }
    }

    /** transformers' CLIPTextConfig; the token ids are those of SD's own text_encoder/config.json. */
    private static String textEncoderJson(ClipTextConfig c) {
        ObjectNode j = Json.mapper().createObjectNode();
        j.putArray("architectures").add("CLIPTextModel");
        j.put("model_type", "clip_text_model");
        j.put("vocab_size", c.vocabSize());
        j.put("hidden_size", c.hiddenSize());
        j.put("intermediate_size", c.intermediateSize());
        j.put("num_hidden_layers", c.numHiddenLayers());
        j.put("num_attention_heads", c.numAttentionHeads());
        j.put("max_position_embeddings", c.maxPositionEmbeddings());
        j.put("hidden_act", c.hiddenAct());
        j.put("layer_norm_eps", c.layerNormEps());
        j.put("bos_token_id", 0);
        j.put("eos_token_id", 2);
        j.put("pad_token_id", 1);
        j.put("torch_dtype", "float32");
        return j.toPrettyString() + "\n";
    }

    private static String vaeJson(VaeConfig c, StableDiffusion model) {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "AutoencoderKL");
        j.put("_diffusers_version", DIFFUSERS_VERSION);
        j.put("act_fn", "silu");
        c.blockOutChannels().forEach(j.putArray("block_out_channels")::add);
        ArrayNode down = j.putArray("down_block_types"), up = j.putArray("up_block_types");
        for (int i = 0; i < c.blockOutChannels().size(); i++) {
            down.add("DownEncoderBlock2D");
            up.add("UpDecoderBlock2D");
        }
        j.put("in_channels", c.outChannels());
        j.put("out_channels", c.outChannels());
        j.put("latent_channels", c.latentChannels());
        j.put("layers_per_block", c.layersPerBlock());
        j.put("norm_num_groups", c.normNumGroups());
        j.put("sample_size", model.defaultResolution());
        j.put("scaling_factor", c.scalingFactor());
        if (!c.midBlockAttention()) j.put("mid_block_add_attention", false);
        return j.toPrettyString() + "\n";
    }

    private static String schedulerJson(DdimConfig c) {
        ObjectNode j = Json.mapper().createObjectNode();
        j.put("_class_name", "DDIMScheduler");
        j.put("_diffusers_version", DIFFUSERS_VERSION);
        j.put("num_train_timesteps", c.numTrainTimesteps());
        j.put("beta_start", c.betaStart());
        j.put("beta_end", c.betaEnd());
        j.put("beta_schedule", c.betaSchedule());
        if (c.trainedBetas() == null) {
            j.putNull("trained_betas");
        } else {
            ArrayNode betas = j.putArray("trained_betas");
            for (float b : c.trainedBetas()) betas.add(b);
        }
        j.put("clip_sample", c.clipSample());
        j.put("clip_sample_range", c.clipSampleRange());
        j.put("set_alpha_to_one", c.setAlphaToOne());
        j.put("steps_offset", c.stepsOffset());
        j.put("prediction_type", c.predictionType());
        j.put("timestep_spacing", c.timestepSpacing());
        return j.toPrettyString() + "\n";
    }

    /** A new file with the bytes (a link's target's) and a new file's permissions. */
    static void copy(Path from, Path to) throws IOException {
        try (InputStream in = Files.newInputStream(from)) {
            Files.copy(in, to);
        }
    }
}
