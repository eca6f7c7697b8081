package esdnative.options;

import esdnative.model.ModelLoader;
import esdnative.util.UserError;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code -m/--model}, {@code --tokenizer}, {@code --config}, {@code --prediction-type} and {@code --ema}: the Stable
 * Diffusion model a command loads, and what a single file does not say itself (its tokenizer, its diffusers configs,
 * what its UNet predicts, which UNet copy to use).
 */
public final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "PATH",
            description = "A diffusers model folder or a single-file checkpoint (.safetensors, .ckpt).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "CLIP tokenizer folder (vocab.json, merges.txt) for single files.")
    Path tokenizer;

    @Option(names = "--config", paramLabel = "DIR", description = "For a single file: a diffusers folder whose configs describe it.")
    Path config;

    @Option(names = "--prediction-type", paramLabel = "TYPE", description = "For a single file: what its UNet predicts, "
            + "epsilon or v_prediction (SD 2.x 768-v models). Default: --config's scheduler, else epsilon.")
    String predictionType;

    @Option(names = "--ema", description = "Use a checkpoint's model_ema.* UNet copy instead of its raw UNet weights "
            + "(the default: what the paper code trained, and what diffusers and A1111 load).")
    boolean ema;

    /** {@code --model}, or null where it was not given. */
    public Path model() { return model; }

    /**
     * {@code --model}, refused where it was not given or does not exist; the other flags' values are checked here too,
     * before loading, so that a refusal names its flag (the loader says the same in words, for callers without flags).
     */
    public Path requireModel() {
        if (model == null) throw new UserError("--model: missing; give a diffusers folder or a single-file checkpoint");
        if (!Files.exists(model)) throw new UserError("--model: " + model + " does not exist");
        if (predictionType != null) Flags.about("--prediction-type", () -> ModelLoader.checkPredictionType(model, predictionType));
        if (config != null && !Files.isDirectory(model)) Flags.about("--config", () -> ModelLoader.checkConfigFolder(config));
        if (ema) Flags.about("--ema", () -> ModelLoader.checkEmaSource(model));
        if (tokenizer != null) Flags.about("--tokenizer", () -> ModelLoader.findTokenizer(tokenizer, null));
        return model;
    }

    /** An SDXL single file holds no configs or tokenizers: refused without {@code --config}. */
    public void requireConfigForSdxlSingleFile() {
        if (model != null && !Files.isDirectory(model) && config == null) {
            throw new UserError("--config: an SDXL single file needs a diffusers SDXL folder for its configs and tokenizers;"
                    + " pass --config DIR");
        }
    }

    public Path tokenizer() { return tokenizer; }

    public Path config() { return config; }

    /** {@code --prediction-type}, or null: the loader reads it from --config's scheduler, else assumes epsilon. */
    public String predictionType() { return predictionType; }

    public boolean ema() { return ema; }
}
