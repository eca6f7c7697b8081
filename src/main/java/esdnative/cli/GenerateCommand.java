package esdnative.cli;

import esdnative.checkpoint.ModelWeights;
import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.io.Npy;
import esdnative.io.OutputLock;
import esdnative.io.NpyArray;
import esdnative.lora.LoraApplier;
import esdnative.model.ModelLoader;
import esdnative.model.SizeLimit;
import esdnative.model.StableDiffusion;
import esdnative.model.Vae;
import esdnative.model.Weights;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.model.vae.VaeConfig;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.options.BackendOptions;
import esdnative.options.Flags;
import esdnative.options.ModelOptions;
import esdnative.options.SamplingOptions;
import esdnative.pipeline.Png;
import esdnative.pipeline.TextToImage;
import esdnative.util.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code esd-native generate}: text to image with DDIM and classifier-free guidance, as StableDiffusionPipeline. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate an image from a prompt (DDIM, classifier-free guidance), e.g. to look at an erased model.")
public final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions models;

    @Option(names = {"--prompt", "-p"}, required = true, paramLabel = "TEXT")
    String prompt;

    @Option(names = "--negative-prompt", paramLabel = "TEXT", description = "The unconditional prompt. Default: empty "
            + "(SDXL: none, which its models encode as zeros).")
    String negativePrompt;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--seed", defaultValue = "0", description = "Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--width", paramLabel = "PX", description = "A multiple of the VAE factor (8 for SD1.x). Default: the model's (512 for SD1.x).")
    Integer width;

    @Option(names = "--height", paramLabel = "PX", description = "A multiple of the VAE factor (8 for SD1.x). Default: the model's (512 for SD1.x).")
    Integer height;

    @Option(names = "--eta", defaultValue = "0", description = "DDIM eta (0: deterministic). Default: ${DEFAULT-VALUE}.")
    float eta;

    @Option(names = {"--output", "-o"}, required = true, paramLabel = "PNG")
    Path output;

    @Option(names = "--init-latents", paramLabel = "NPY", description = "Start from these latents instead of seeded noise.")
    Path initLatents;

    @Option(names = "--save-latents", paramLabel = "NPY", description = "Also write the final latents.")
    Path saveLatents;

    @Mixin
    BackendOptions backend;

    @Option(names = "--lora", paramLabel = "FILE[:SCALE]", description = "Apply a LoRA file (kohya keys) to the UNet at load time, at SCALE (default 1). Repeatable.")
    List<String> loras = List.of();

    @Option(names = "--overwrite", description = "Replace an existing --output (and --save-latents).")
    boolean overwrite;

    @Option(names = "--original-size", paramLabel = "H,W", description = "SDXL: the original image size it conditions on. Default: the image size.")
    String originalSize;

    @Option(names = "--crops", paramLabel = "TOP,LEFT", description = "SDXL: the crop's top-left corner it conditions on. Default: 0,0.")
    String crops;

    @Override
    public Integer call() {
        Path model = models.model(), tokenizer = models.tokenizer(), configDir = models.config();
        String predictionType = models.predictionType();
        boolean ema = models.ema();
        sampling.check();
        if (!(eta >= 0) || !Float.isFinite(eta)) throw new UserError("--eta: must be finite and not negative, got " + eta);
        if (!output.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".png")) {
            throw new UserError("--output: " + output + ": images are written as PNG; name the file .png");
        }
        checkNew(output, "--output");
        if (saveLatents != null) checkNew(saveLatents, "--save-latents");
        models.requireModel();
        backend.check();
        List<LoraApplier.Spec> loraSpecs = loras.stream().map(s -> Flags.about("--lora", () -> LoraApplier.Spec.parse(s))).toList();
        for (LoraApplier.Spec lora : loraSpecs) {
            if (!Files.isRegularFile(lora.file())) throw new UserError("--lora: " + lora.file() + " not found");
        }
        float[] init = null;
        int[] initShape = null;
        if (initLatents != null) {
            if (!Files.isRegularFile(initLatents)) throw new UserError("--init-latents: " + initLatents + " not found");
            NpyArray a = Npy.read(initLatents);
            init = a.floats();
            initShape = a.shape();
        }
        if (StableDiffusionXL.isSdxl(model)) return SdxlGeneration.run(this, loraSpecs, init, initShape);
        if (originalSize != null || crops != null) throw new UserError("--original-size/--crops: only for SDXL models");
        try (Backend be = backend.open(System.err::println);
             StableDiffusion sd = ModelLoader.load(be, model, tokenizer, configDir, ema ? ModelWeights.Ema.REQUIRE : ModelWeights.Ema.OFF,
                     predictionType)) {
            ModelLoader.hintConfig(System.err, sd, configDir, "--config DIR");
            applyLorasAndFreeze(be, sd.unetWeights(), loraSpecs);
            Vae vae = ModelLoader.loadVae(be, sd, configDir);
            int[] size = imageSize(sd.unet(), vae == null ? null : vae.config(), sd.vaeScaleFactor(), sd.defaultResolution(), initShape);
            int h = size[0], w = size[1];
            // a second run onto the same image refuses here, before sampling
            try (OutputLock lock = OutputLock.acquire(output, "--output")) {
                ProgressBar bar = new ProgressBar(System.err, sampling.steps());
                TextToImage.Result r = TextToImage.run(be, sd, vae,
                        new TextToImage.Request(prompt, negativePrompt == null ? "" : negativePrompt, sampling.steps(), sampling.guidance(), eta, seed, w, h, init),
                        (i, t, x) -> bar.update(i + 1, i + 1, "t " + t));
                return write(r);
            }
        }
    }

    /** Writes the image (and --save-latents), refusing latents that are not finite. */
    int write(TextToImage.Result r) {
        for (float v : r.latents()) {
            if (!Float.isFinite(v)) {
                throw new UserError("the sampled latents hold " + v + ": the model's weights (or --init-latents) are "
                        + "not finite; no image written");
            }
        }
        Png.write(output, r.image(), r.imageHeight(), r.imageWidth());
        if (saveLatents != null) Npy.writeFloats(saveLatents, r.latents(), r.latentShape());
        System.err.printf(Locale.ROOT, "wrote %s (%d×%d)%n", output, r.imageWidth(), r.imageHeight());
        return 0;
    }

    /** Refuses, before any work, to replace an existing file without --overwrite. */
    private void checkNew(Path file, String flag) {
        if (Files.isDirectory(file)) throw new UserError(flag + ": " + file + " is a folder");
        if (Files.exists(file) && !overwrite) throw new UserError(flag + ": " + file + " already exists (pass --overwrite to replace it)");
    }
    /** Applies each LoRA file to the UNet's weights, saying how many modules it changed. */
    /**
     * Applies the LoRAs to the UNet, whose weights are then final: frozen, for the backend to store as it multiplies
     * them (--precision bf16: bfloat16).
     */
    static void applyLorasAndFreeze(Backend be, Weights unet, List<LoraApplier.Spec> specs) {
        for (LoraApplier.Spec lora : specs) {
            int modules = Flags.about("--lora", () -> LoraApplier.apply(be, unet, lora));
            System.err.printf(Locale.ROOT, "applied %s at scale %s (%d modules)%n", lora.file(), lora.scale(), modules);
        }
        UNetWeights.freeze(be, unet, name -> true);
    }

    /**
     * The image's [height, width] in pixels: --width/--height, else the init latents' size, else the model's
     * default; refused unless whole latents, within the array limits and matching the init latents' shape.
     */
    int[] imageSize(UNetConfig unet, VaeConfig vae, int f, int defaultResolution, int[] initShape) {
        int w = width != null ? width : initShape != null ? initShape[3] * f : defaultResolution;
        int h = height != null ? height : initShape != null ? initShape[2] * f : defaultResolution;
        // any whole latent size, as diffusers (multiples of 8 px for SD): the UNet upsamples to its skips' sizes
        if (w <= 0 || h <= 0 || w % f != 0 || h % f != 0) {
            throw new UserError("--width/--height: " + w + "×" + h + " px must be positive multiples of " + f
                    + " (the VAE's factor)");
        }
        SizeLimit.check("--width/--height", unet, vae, f, h, w, 2, false);
        int[] expected = {1, unet.inChannels(), h / f, w / f};
        if (initShape != null && !Arrays.equals(initShape, expected)) {
            throw new UserError("--init-latents: shape " + Arrays.toString(initShape) + ", this model at " + w + "×" + h
                    + " needs " + Arrays.toString(expected));
        }
        return new int[] {h, w};
    }
}
