package esdnative.pipeline;

import esdnative.backend.Backend;
import esdnative.model.sdxl.MicroConditioning;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

/**
 * StableDiffusionXLPipeline's text-to-image with DDIM (diffusers 0.21.4): encode_prompt (the negative input is
 * zeros without a negative prompt when the model forces zeros), the same micro-conditioning time ids for both
 * halves of the guided batch, guided sampling from the initial latents, the VAE decode in float32, and [-1, 1]
 * mapped to [0, 1] as output_type "np".
 */
public final class SdxlTextToImage {
    /**
     * The request; {@code negativePrompt} null means none (not ""), {@code conditioning} null means the pipeline's
     * default (original = target = the image size, no crop), {@code initialLatents} null means noise from {@code seed}.
     */
    public record Request(String prompt, String negativePrompt, int steps, float guidance, long seed, int width,
                          int height, MicroConditioning conditioning, float[] initialLatents) {}

    private SdxlTextToImage() {}

    public static TextToImage.Result run(Backend be, StableDiffusionXL sd, Request r,
                                         GuidedSampler.StepListener listener,
                                         GuidedSampler.PredictionListener predictions) {
        int f = sd.vaeScaleFactor();
        int[] shape = {1, sd.unet().inChannels(), r.height() / f, r.width() / f};
        float[] init = r.initialLatents() != null ? r.initialLatents()
                : new Rng(r.seed()).normal((int) Tensor.sizeOf(shape));
        // DDIM's init_noise_sigma is 1: the initial latents are used as they are
        Tensor latents = be.fromHost(init, shape);
        PromptEmbeds cond = sd.text().encode(r.prompt());
        PromptEmbeds uncond = sd.text().encodeNegative(r.negativePrompt(), cond);
        MicroConditioning micro = r.conditioning() != null ? r.conditioning()
                : MicroConditioning.uncropped(r.height(), r.width());
        DdimScheduler scheduler = new DdimScheduler(sd.scheduler());
        scheduler.setTimesteps(r.steps());
        Tensor out = GuidedSampler.sample(be, sd.unetModel(), sd.unetWeights(), scheduler, latents, uncond, cond,
                micro.timeIds(), r.guidance(), r.steps(), listener, predictions);
        return TextToImage.result(be, out, sd.vae().decoder().decode(be, sd.vae().weights(), out));
    }
}
