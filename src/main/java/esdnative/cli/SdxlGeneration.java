package esdnative.cli;

import esdnative.backend.Backend;
import esdnative.io.OutputLock;
import esdnative.lora.LoraApplier;
import esdnative.model.sdxl.MicroConditioning;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.pipeline.SdxlTextToImage;
import esdnative.pipeline.TextToImage;
import esdnative.util.ProgressBar;
import esdnative.util.UserError;

import java.util.List;

/**
 * {@code generate} on an SDXL model, as StableDiffusionXLPipeline with DDIM: no --negative-prompt means the model's
 * zeros (force_zeros_for_empty_prompt), micro-conditioning from --original-size and --crops (default: the image
 * size, no crop). Reads the options of {@link GenerateCommand}.
 */
final class SdxlGeneration {
    private SdxlGeneration() {}

    static int run(GenerateCommand c, List<LoraApplier.Spec> loras, float[] init, int[] initShape) {
        c.models.requireConfigForSdxlSingleFile();
        if (c.models.ema()) throw new UserError("--ema: not for SDXL models");
        if (c.models.predictionType() != null) throw new UserError("--prediction-type: not for SDXL models (epsilon)");
        if (c.models.tokenizer() != null) throw new UserError("--tokenizer: an SDXL model reads its two tokenizers from its folder (or --config's)");
        if (c.eta != 0) throw new UserError("--eta: SDXL sampling is deterministic here (eta 0), got " + c.eta);
        try (Backend be = c.backend.open(System.err::println)) {
            StableDiffusionXL sd = StableDiffusionXL.load(be, c.models.model(), c.models.config());
            GenerateCommand.applyLorasAndFreeze(be, sd.unetWeights(), loras);
            int[] size = c.imageSize(sd.unet(), sd.vae().config(), sd.vaeScaleFactor(), sd.defaultResolution(), initShape);
            int h = size[0], w = size[1];
            int[] original = c.originalSize != null ? pair(c.originalSize, "--original-size") : new int[] {h, w};
            int[] crop = c.crops != null ? pair(c.crops, "--crops") : new int[] {0, 0};
            var micro = new MicroConditioning(original[0], original[1], crop[0], crop[1], h, w);
            try (OutputLock lock = OutputLock.acquire(c.output, "--output")) {
                ProgressBar bar = new ProgressBar(System.err, c.sampling.steps());
                TextToImage.Result r = SdxlTextToImage.run(be, sd,
                        new SdxlTextToImage.Request(c.prompt, c.negativePrompt, c.sampling.steps(), c.sampling.guidance(), c.seed, w, h, micro, init),
                        (i, t, x) -> bar.update(i + 1, i + 1, "t " + t), null);
                return c.write(r);
            }
        }
    }

    /** "A,B" as two non-negative integers (height then width, or top then left). */
    private static int[] pair(String value, String flag) {
        String[] parts = value.split(",");
        try {
            if (parts.length == 2) {
                int a = Integer.parseInt(parts[0].strip()), b = Integer.parseInt(parts[1].strip());
                if (a >= 0 && b >= 0) return new int[] {a, b};
            }
        } catch (NumberFormatException e) {
            // the message below says what is expected
        }
        throw new UserError(flag + ": expected two non-negative integers A,B, got '" + value + "'");
    }
}
