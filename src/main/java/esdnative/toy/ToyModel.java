package esdnative.toy;

import esdnative.backend.Backend;
import esdnative.checkpoint.TensorEntries;
import esdnative.io.AtomicOutput;
import esdnative.io.DType;
import esdnative.io.Json;
import esdnative.io.SafetensorsWriter;
import esdnative.model.Weights;
import esdnative.model.clip.ClipTextModel;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * The toy pixel-space model's architecture and its diffusers-layout folder (unet/, text_encoder/, tokenizer/,
 * scheduler/, model_index.json, no vae/), which {@code ModelLoader} reads as a pixel-space model.
 */
public final class ToyModel {
    private ToyModel() {}

    /**
     * TOY-NOTES' UNet (0.98 M parameters at channels = 32): (channels, 2·channels), a plain block at full resolution and cross-attention
     * only at half resolution (and in the mid block), 1 layer per block, 4 heads, 8 groups, context dim 32.
     */
    public static UNetConfig unetConfig(int imageSize, int channels) {
        return new UNetConfig(3, 3, imageSize, List.of(channels, 2 * channels),
                List.of(UNetConfig.DOWN, UNetConfig.CROSS_ATTN_DOWN), List.of(UNetConfig.CROSS_ATTN_UP, UNetConfig.UP),
                List.of(1, 1), List.of(ToyText.HIDDEN, ToyText.HIDDEN), List.of(4, 4), List.of(1, 1),
                8, 1e-5f, true, 0f, false, false, 1f, 3, 3, 4 * channels);
    }

    /** SD1.x's scaled_linear schedule: the pretraining noise schedule and the DDIM sampler's. */
    public static DdimConfig scheduler() { return DdimConfig.stableDiffusion1(); }

    /**
     * Writes the complete folder to {@code dir}: built in a sibling temp folder, then moved into place (an
     * existing folder is replaced), so a crash never leaves a half-written model.
     */
    public static void save(Backend be, Path dir, UNetConfig unet, Weights unetWeights, ClipTextModel text,
                            Map<String, String> metadata) {
        try {
            Files.createDirectories(dir.toAbsolutePath().getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write toy model " + dir, e);
        }
        AtomicOutput.write(dir, "toy model", true, tmp -> writeFolder(be, tmp, unet, unetWeights, text, metadata));
    }

    private static void writeFolder(Backend be, Path dir, UNetConfig unet, Weights unetWeights, ClipTextModel text,
                                    Map<String, String> metadata) throws IOException {
        for (String sub : List.of("unet", "text_encoder", "scheduler")) Files.createDirectories(dir.resolve(sub));
        writeJson(dir.resolve("unet/config.json"), unetJson(unet));
        SafetensorsWriter.write(dir.resolve("unet/diffusion_pytorch_model.safetensors"),
                entries(be, unetWeights, ""), metadata);

        var c = text.config();
        Map<String, Object> textJson = new LinkedHashMap<>();
        textJson.put("_class_name", "CLIPTextModel");
        textJson.put("architectures", List.of("CLIPTextModel"));
        textJson.put("vocab_size", c.vocabSize());
        textJson.put("hidden_size", c.hiddenSize());
        textJson.put("intermediate_size", c.intermediateSize());
        textJson.put("num_hidden_layers", c.numHiddenLayers());
        textJson.put("num_attention_heads", c.numAttentionHeads());
        textJson.put("max_position_embeddings", c.maxPositionEmbeddings());
        textJson.put("hidden_act", c.hiddenAct());
        textJson.put("layer_norm_eps", c.layerNormEps());
        textJson.put("bos_token_id", 0);
        textJson.put("eos_token_id", 1);
        textJson.put("pad_token_id", 1);
        writeJson(dir.resolve("text_encoder/config.json"), textJson);
        SafetensorsWriter.write(dir.resolve("text_encoder/model.safetensors"), entries(be, text.weights(), "text_model."),
                Map.of());

        ToyText.writeTokenizer(dir.resolve("tokenizer"));

        DdimConfig s = scheduler();
        Map<String, Object> sched = new LinkedHashMap<>();
        sched.put("_class_name", "DDIMScheduler");
        sched.put("num_train_timesteps", s.numTrainTimesteps());
        sched.put("beta_start", s.betaStart());
        sched.put("beta_end", s.betaEnd());
        sched.put("beta_schedule", s.betaSchedule());
        sched.put("clip_sample", s.clipSample());
        sched.put("set_alpha_to_one", s.setAlphaToOne());
        sched.put("steps_offset", s.stepsOffset());
        sched.put("prediction_type", s.predictionType());
        sched.put("timestep_spacing", s.timestepSpacing());
        writeJson(dir.resolve("scheduler/scheduler_config.json"), sched);

        Map<String, Object> index = new LinkedHashMap<>();
        index.put("_class_name", "StableDiffusionPipeline");
        index.put("_esd_native_toy", "pixel-space toy model of the built-in shapes world (no VAE: the UNet works on "
                + unet.sampleSize() + "x" + unet.sampleSize() + " RGB pixels in [-1, 1])");
        index.put("unet", List.of("diffusers", "UNet2DConditionModel"));
        index.put("text_encoder", List.of("transformers", "CLIPTextModel"));
        index.put("tokenizer", List.of("transformers", "CLIPTokenizer"));
        index.put("scheduler", List.of("diffusers", "DDIMScheduler"));
        writeJson(dir.resolve("model_index.json"), index);
    }

    private static Map<String, Object> unetJson(UNetConfig u) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("_class_name", "UNet2DConditionModel");
        j.put("in_channels", u.inChannels());
        j.put("out_channels", u.outChannels());
        j.put("sample_size", u.sampleSize());
        j.put("block_out_channels", u.blockOutChannels());
        j.put("down_block_types", u.downBlockTypes());
        j.put("up_block_types", u.upBlockTypes());
        j.put("layers_per_block", u.layersPerBlock().getFirst());
        j.put("cross_attention_dim", u.crossAttentionDim().getFirst());
        j.put("attention_head_dim", u.attentionHeads());
        j.put("norm_num_groups", u.normNumGroups());
        j.put("norm_eps", u.normEps());
        j.put("flip_sin_to_cos", u.flipSinToCos());
        j.put("freq_shift", u.freqShift());
        j.put("use_linear_projection", u.useLinearProjection());
        j.put("mid_block_scale_factor", u.midBlockScaleFactor());
        j.put("time_embedding_dim", u.timeEmbeddingDim());
        return j;
    }

    private static SequencedMap<String, SafetensorsWriter.Entry> entries(Backend be, Weights w, String prefix) {
        SequencedMap<String, SafetensorsWriter.Entry> out = new LinkedHashMap<>();
        for (var e : w.asMap().entrySet()) out.put(prefix + e.getKey(), TensorEntries.of(be, e.getValue(), DType.F32));
        return out;
    }

    private static void writeJson(Path file, Object value) throws IOException {
        Json.mapper().writerWithDefaultPrettyPrinter().writeValue(file.toFile(), value);
    }
}
