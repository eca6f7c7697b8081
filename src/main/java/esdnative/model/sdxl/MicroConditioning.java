package esdnative.model.sdxl;

/**
 * SDXL's micro-conditioning (StableDiffusionXLPipeline._get_add_time_ids): the image's original size, the crop's
 * top-left corner and the target size, in pixels, fed to the UNet as six floats per sample.
 */
public record MicroConditioning(int originalHeight, int originalWidth, int cropTop, int cropLeft, int targetHeight,
                                int targetWidth) {

    /** The pipeline's default for an image of {@code height} × {@code width}: original = target = that, no crop. */
    public static MicroConditioning uncropped(int height, int width) {
        return new MicroConditioning(height, width, 0, 0, height, width);
    }

    /** add_time_ids: [orig_h, orig_w, crop_top, crop_left, target_h, target_w]. */
    public float[] timeIds() {
        return new float[] {originalHeight, originalWidth, cropTop, cropLeft, targetHeight, targetWidth};
    }
}
