package esdnative.model.vae;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import esdnative.util.UserError;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The decoder half of a diffusers AutoencoderKL ({@code vae/config.json}): latent and image channels, per-level
 * channels, resnets per level, group count, and the scaling factor the pipeline divides latents by before
 * decoding.
 */
public record VaeConfig(int latentChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                        int normNumGroups, float scalingFactor, boolean midBlockAttention) {

    public VaeConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
    }

    /** Image height/width per latent height/width (2 per upsampling level). */
    public int upscale() { return 1 << (blockOutChannels.size() - 1); }

    /** The Stable Diffusion 1.x / 2.x VAE (kl-f8). */
    public static VaeConfig sd() {
        return new VaeConfig(4, 3, List.of(128, 256, 512, 512), 2, 32, 0.18215f, true);
    }

    /** Reads a diffusers AutoencoderKL config.json; unsupported settings are {@link UserError}s. */
    public static VaeConfig fromJson(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new UserError("cannot read VAE config " + file + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new UserError("VAE config " + file + ": not a JSON object");
        String cls = root.path("_class_name").asText("AutoencoderKL");
        if (!cls.equals("AutoencoderKL")) throw fail(file, "_class_name", cls + " is not an AutoencoderKL");
        if (!root.path("act_fn").asText("silu").equals("silu")) throw fail(file, "act_fn", "only silu is supported");
        JsonNode blocks = root.get("block_out_channels");
        if (blocks == null || !blocks.isArray() || blocks.isEmpty()) {
            throw fail(file, "block_out_channels", "must be a non-empty list of integers");
        }
        List<Integer> channels = new ArrayList<>();
        for (JsonNode b : blocks) channels.add(b.asInt());
        JsonNode up = root.get("up_block_types");
        if (up != null) {
            if (!up.isArray() || up.size() != channels.size()) {
                throw fail(file, "up_block_types", "needs one entry per block_out_channels entry");
            }
            for (JsonNode t : up) {
                if (!t.asText().equals("UpDecoderBlock2D")) throw fail(file, "up_block_types", t.asText() + " is not supported");
            }
        }
        int groups = root.path("norm_num_groups").asInt(32);
        for (int c : channels) if (c % groups != 0) throw fail(file, "norm_num_groups", groups + " does not divide " + c);
        double scaling = root.path("scaling_factor").asDouble(0.18215);
        if (!(scaling > 0)) throw fail(file, "scaling_factor", "must be positive");
        return new VaeConfig(root.path("latent_channels").asInt(4), root.path("out_channels").asInt(3), channels,
                root.path("layers_per_block").asInt(2), groups, (float) scaling,
                root.path("mid_block_add_attention").asBoolean(true));
    }

    private static UserError fail(Path file, String key, String what) {
        return new UserError("VAE config " + file + ": " + key + " " + what);
    }
}
