package esdnative.model.vae;

import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeDecoder;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.SequencedMap;

/**
 * Every parameter of a diffusers AutoencoderKL, named and shaped from its config alone (nothing allocated): the
 * encoder (conv_in, DownEncoderBlock2D levels, mid block, conv_norm_out, conv_out to 2·latent moment channels),
 * quant_conv, then the decoder as {@link VaeDecoder} declares it. The image has {@code outChannels} channels on
 * both sides, as in every Stable Diffusion VAE.
 */
public final class AutoencoderShapes {
    private AutoencoderShapes() {}

    /** The whole autoencoder: encoder, quant_conv, post_quant_conv and decoder. */
    public static SequencedMap<String, int[]> all(VaeConfig c) {
        SequencedMap<String, int[]> shapes = encoder(c);
        shapes.putAll(VaeDecoder.parameterShapes(c));
        return Collections.unmodifiableSequencedMap(shapes);
    }

    /** The encoder half and quant_conv. */
    public static SequencedMap<String, int[]> encoder(VaeConfig c) {
        SequencedMap<String, int[]> s = new LinkedHashMap<>();
        int first = c.blockOutChannels().getFirst();
        conv(s, "encoder.conv_in", first, c.outChannels(), 3);
        int in = first;
        for (int i = 0; i < c.blockOutChannels().size(); i++) {
            int out = c.blockOutChannels().get(i);
            for (int j = 0; j < c.layersPerBlock(); j++) {
                resnet(s, "encoder.down_blocks." + i + ".resnets." + j, j == 0 ? in : out, out);
            }
            // every level but the last halves the resolution
            if (i < c.blockOutChannels().size() - 1) conv(s, "encoder.down_blocks." + i + ".downsamplers.0.conv", out, out, 3);
            in = out;
        }
        resnet(s, "encoder.mid_block.resnets.0", in, in);
        if (c.midBlockAttention()) {
            String a = "encoder.mid_block.attentions.0.";
            norm(s, a + "group_norm", in);
            for (String proj : new String[] {"to_q", "to_k", "to_v", "to_out.0"}) linear(s, a + proj, in, in);
        }
        resnet(s, "encoder.mid_block.resnets.1", in, in);
        norm(s, "encoder.conv_norm_out", in);
        conv(s, "encoder.conv_out", 2 * c.latentChannels(), in, 3);
        conv(s, "quant_conv", 2 * c.latentChannels(), 2 * c.latentChannels(), 1);
        return s;
    }

    /** The number of scalars in {@code shapes}. */
    public static long count(SequencedMap<String, int[]> shapes) {
        long n = 0;
        for (int[] shape : shapes.values()) {
            long k = 1;
            for (int d : shape) k *= d;
            n += k;
        }
        return n;
    }

    private static void resnet(SequencedMap<String, int[]> s, String prefix, int in, int out) {
        norm(s, prefix + ".norm1", in);
        conv(s, prefix + ".conv1", out, in, 3);
        norm(s, prefix + ".norm2", out);
        conv(s, prefix + ".conv2", out, out, 3);
        if (in != out) conv(s, prefix + ".conv_shortcut", out, in, 1);
    }

    private static void conv(SequencedMap<String, int[]> s, String prefix, int out, int in, int kernel) {
        s.put(prefix + ".weight", new int[] {out, in, kernel, kernel});
        s.put(prefix + ".bias", new int[] {out});
    }

    private static void linear(SequencedMap<String, int[]> s, String prefix, int out, int in) {
        s.put(prefix + ".weight", new int[] {out, in});
        s.put(prefix + ".bias", new int[] {out});
    }

    private static void norm(SequencedMap<String, int[]> s, String prefix, int channels) {
        s.put(prefix + ".weight", new int[] {channels});
        s.put(prefix + ".bias", new int[] {channels});
    }
}
