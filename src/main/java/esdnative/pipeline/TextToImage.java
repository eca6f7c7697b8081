package esdnative.pipeline;

import esdnative.backend.Backend;
import esdnative.model.StableDiffusion;
import esdnative.model.Vae;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

/**
 * StableDiffusionPipeline's text-to-image with DDIM: encode the prompt and the negative prompt, sample with
 * classifier-free guidance from the initial latents, decode with the VAE (pixel-space models skip that), and map
 * [-1, 1] to [0, 1] as the pipeline's output_type "np".
 */
public final class TextToImage {
    /** The request; {@code initialLatents} null means noise drawn from {@code seed}. */
    public record Request(String prompt, String negativePrompt, int steps, float guidance, float eta, long seed,
                          int width, int height, float[] initialLatents) {}

    /** Final latents [1, c, h, w] and the image [h·f, w·f, 3] in [0, 1] (row-major, channels last). */
    public record Result(float[] latents, int[] latentShape, float[] image, int imageHeight, int imageWidth) {}

    private TextToImage() {}

    public static Result run(Backend be, StableDiffusion sd, Vae vae, Request r, GuidedSampler.StepListener listener) {
        int f = sd.vaeScaleFactor();
        int[] shape = {1, sd.unet().inChannels(), r.height() / f, r.width() / f};
        Rng rng = new Rng(r.seed());
        float[] init = r.initialLatents() != null ? r.initialLatents() : rng.normal((int) Tensor.sizeOf(shape));
        // DDIM's init_noise_sigma is 1: the initial latents are used as they are
        Tensor latents = be.fromHost(init, shape);
        Tensor uncond = sd.textEncoder().forward(sd.tokenizer().encodePadded(r.negativePrompt()), 1);
        Tensor cond = sd.textEncoder().forward(sd.tokenizer().encodePadded(r.prompt()), 1);
        DdimScheduler scheduler = new DdimScheduler(sd.scheduler());
        scheduler.setTimesteps(r.steps());
        UNet2DConditionModel unet = sd.unetModel();
        Tensor out = GuidedSampler.sample(be, unet, sd.unetWeights(), scheduler, latents, uncond, cond, r.guidance(),
                r.steps(), r.eta(), () -> be.fromHost(rng.normal((int) Tensor.sizeOf(shape)), shape), listener);
        Tensor pixels = vae != null ? vae.decoder().decode(be, vae.weights(), out) : out;
        return result(be, out, pixels);
    }

    /** The final latents and the image [1, c, h, w] in [-1, 1] mapped to [0, 1], channels last (output_type "np"). */
    static Result result(Backend be, Tensor latents, Tensor pixels) {
        int c = pixels.dim(1), h = pixels.dim(2), w = pixels.dim(3);
        float[] chw = be.toHost(pixels);
        float[] hwc = new float[h * w * c];
        for (int ch = 0; ch < c; ch++) {
            for (int i = 0; i < h * w; i++) {
                hwc[i * c + ch] = Math.clamp(chw[ch * h * w + i] / 2 + 0.5f, 0f, 1f);
            }
        }
        return new Result(be.toHost(latents), latents.shape(), hwc, h, w);
    }
}
