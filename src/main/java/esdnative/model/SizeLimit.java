package esdnative.model;

import esdnative.util.UserError;
import esdnative.model.unet.UNetConfig;
import esdnative.model.vae.VaeConfig;

import java.util.Locale;

/**
 * Refuses, before any work, an image size whose largest tensors would not fit one array: Java's limit of
 * 2³¹ − 9 elements, which the CPU backend's storage and the int indices of every op share. The arrays counted are
 * the ones that grow fastest with the size: the latents, each UNet level's activations (a skip connection
 * concatenated), its feed-forward and its attention scores (per head when sampling; every head's, kept for the
 * backward pass, when training), and the VAE decoder's activations and mid-block attention.
 */
public final class SizeLimit {
    /** elements one array holds at most */
    public static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    private SizeLimit() {}

    /**
     * @param flag     the option that set the size, for the message (e.g. "--resolution")
     * @param vae      the decoder that turns the latents into an image, or null (training never decodes)
     * @param batch    samples the UNet sees at once (2 with classifier-free guidance)
     * @param training whether attention keeps every head's scores for the backward pass
     * @throws UserError naming the first array that would not fit and the largest square size that does
     */
    public static void check(String flag, UNetConfig unet, VaeConfig vae, int vaeFactor, int height, int width,
                             int batch, boolean training) {
        String tooLarge = firstTooLarge(unet, vae, vaeFactor, height, width, batch, training);
        if (tooLarge == null) return;
        int multiple = vaeFactor * unet.spatialMultiple();
        int side = Math.min(height, width) / multiple * multiple;
        while (side > 0 && firstTooLarge(unet, vae, vaeFactor, side, side, batch, training) != null) side -= multiple;
        throw new UserError(String.format(Locale.ROOT, "%s: %d×%d px is too large: %s, more than one array holds (%,d)%s",
                flag, width, height, tooLarge, MAX_ELEMENTS,
                side > 0 ? "; this model allows at most about " + side + "×" + side + " px" : ""));
    }

    /** A description of the first array over the limit, or null when all fit. */
    private static String firstTooLarge(UNetConfig unet, VaeConfig vae, int vaeFactor, int height, int width,
                                        int batch, boolean training) {
        double h = (double) height / vaeFactor, w = (double) width / vaeFactor, latentArea = h * w;
        if (batch * unet.inChannels() * latentArea > MAX_ELEMENTS) return "the latents need " + count(batch * unet.inChannels() * latentArea) + " values";
        int levels = unet.levels();
        for (int level = 0; level < levels; level++) {
            double area = latentArea / Math.pow(4, level);
            int channels = unet.blockOutChannels().get(level), below = unet.blockOutChannels().get(Math.min(level + 1, levels - 1));
            double activations = batch * (channels + below) * area;
            if (activations > MAX_ELEMENTS) return "the UNet's level-" + level + " activations need " + count(activations) + " values";
            boolean attention = unet.downBlockTypes().get(level).equals(UNetConfig.CROSS_ATTN_DOWN) || level == levels - 1;
            if (!attention) continue;
            double feedForward = batch * area * 8.0 * channels;   // GEGLU: two halves of 4 × the width
            if (feedForward > MAX_ELEMENTS) return "the UNet's level-" + level + " feed-forward needs " + count(feedForward) + " values";
            double scores = (training ? batch * unet.attentionHeads().get(level) : 1) * area * area;
            if (scores > MAX_ELEMENTS) {
                return "the UNet's level-" + level + " attention over " + count(area) + " latent pixels needs "
                        + count(scores) + " scores";
            }
        }
        if (vae == null) return null;
        if (latentArea * latentArea > MAX_ELEMENTS) {
            return "the VAE's attention over " + count(latentArea) + " latent pixels needs " + count(latentArea * latentArea) + " scores";
        }
        int vaeLevels = vae.blockOutChannels().size();
        for (int i = 0; i < vaeLevels; i++) {
            // decoder level i runs the channels in reverse at 4^i × the latent area, then (but the last) upsamples
            int channels = vae.blockOutChannels().get(vaeLevels - 1 - i);
            double area = latentArea * Math.pow(4, i + (i < vaeLevels - 1 ? 1 : 0));
            if (channels * area > MAX_ELEMENTS) {   // one image at a time
                return "the VAE decoder's " + channels + "-channel activations need " + count(channels * area) + " values";
            }
        }
        return null;
    }

    private static String count(double n) {
        return n < 1e12 ? String.format(Locale.ROOT, "%,d", (long) n) : String.format(Locale.ROOT, "%.3g", n);
    }
}
