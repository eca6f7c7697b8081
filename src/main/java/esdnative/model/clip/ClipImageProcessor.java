package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;
import esdnative.io.Json;

import java.nio.file.Path;

/**
 * transformers 4.33's CLIPImageProcessor (and the legacy CLIPFeatureExtractor of SD 1.x repos) on 8-bit RGB
 * images, exactly: resize so the shorter side is {@code shortestEdge} (the longer side truncated, Pillow's
 * bicubic), center crop, rescale (u8 · factor in double, cast to float), normalise ((v − mean) / std in float),
 * channels first.
 */
public record ClipImageProcessor(int shortestEdge, int cropHeight, int cropWidth, double rescaleFactor,
                                 float[] mean, float[] std) {

    /** preprocessor_config.json; {@code size}/{@code crop_size} as objects or (legacy form) plain integers. */
    public static ClipImageProcessor read(Path file) {
        JsonNode json = Json.tree(file);
        JsonNode size = json.path("size"), crop = json.path("crop_size");
        int shortest = size.isInt() ? size.asInt() : size.path("shortest_edge").asInt(224);
        int cropH = crop.isInt() ? crop.asInt() : crop.path("height").asInt(224);
        int cropW = crop.isInt() ? crop.asInt() : crop.path("width").asInt(224);
        for (String flag : new String[] {"do_resize", "do_center_crop", "do_normalize", "do_convert_rgb"}) {
            if (!json.path(flag).asBoolean(true)) throw new UserError(file + ": " + flag + " false is not supported");
        }
        if (json.path("resample").asInt(3) != 3) throw new UserError(file + ": only resample 3 (bicubic) is supported");
        boolean rescale = json.path("do_rescale").asBoolean(true);
        return new ClipImageProcessor(shortest, cropH, cropW,
                rescale ? json.path("rescale_factor").asDouble(1 / 255.0) : 1.0,
                floats(json.path("image_mean"), new float[] {0.48145466f, 0.4578275f, 0.40821073f}),
                floats(json.path("image_std"), new float[] {0.26862954f, 0.26130258f, 0.27577711f}));
    }

    private static float[] floats(JsonNode array, float[] dflt) {
        if (!array.isArray()) return dflt;
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) array.get(i).asDouble();
        if (out.length != 3) throw new UserError("image_mean/image_std: need 3 values, got " + out.length);
        return out;
    }

    /** get_resize_output_image_size(shortest_edge, default_to_square=False) → {width, height}. */
    public int[] resizedSize(int width, int height) {
        int shortSide = Math.min(width, height), longSide = Math.max(width, height);
        int newLong = (int) ((double) shortestEdge * longSide / shortSide);
        return width <= height ? new int[] {shortestEdge, newLong} : new int[] {newLong, shortestEdge};
    }

    /** Resized image (bicubic) before the crop. */
    public RgbImage resize(RgbImage img) {
        int[] size = resizedSize(img.width(), img.height());
        return PillowBicubic.resize(img, size[0], size[1]);
    }

    /** Center crop: top = (h − cropH) // 2, left = (w − cropW) // 2. */
    public RgbImage crop(RgbImage img) {
        if (img.width() < cropWidth || img.height() < cropHeight) {
            throw new UserError("image processor: crop " + cropWidth + "×" + cropHeight + " is larger than the resized "
                    + img.width() + "×" + img.height() + " image");
        }
        int top = (img.height() - cropHeight) / 2, left = (img.width() - cropWidth) / 2;
        byte[] out = new byte[cropHeight * cropWidth * 3];
        for (int y = 0; y < cropHeight; y++) {
            System.arraycopy(img.rgb(), ((top + y) * img.width() + left) * 3, out, y * cropWidth * 3, cropWidth * 3);
        }
        return new RgbImage(cropWidth, cropHeight, out);
    }

    /** pixel_values [3, cropH, cropW] of one image. */
    public float[] pixelValues(RgbImage img) {
        RgbImage cropped = crop(resize(img));
        int plane = cropHeight * cropWidth;
        float[] out = new float[3 * plane];
        for (int i = 0; i < plane; i++) {
            for (int c = 0; c < 3; c++) {
                float v = (float) ((cropped.rgb()[i * 3 + c] & 0xFF) * rescaleFactor);
                out[c * plane + i] = (v - mean[c]) / std[c];
            }
        }
        return out;
    }
}
