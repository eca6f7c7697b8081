package esdnative.model.vae;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.Attention;
import esdnative.model.nn.Conv2d;
import esdnative.model.nn.GroupNorm;
import esdnative.model.unet.ResnetBlock2D;
import esdnative.model.unet.Upsample2D;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' AutoencoderKL.decode, forward only: latents / scaling_factor → post_quant_conv (1×1) → decoder:
 * conv_in → mid block (resnet, single-head spatial self-attention, resnet) → up blocks (layers+1 resnets, then
 * a nearest 2× upsample + conv except in the last) → conv_norm_out → SiLU → conv_out. Every norm has eps 1e-6.
 * Layers' activations are dropped as soon as the next layer has run (no backward).
 */
public final class VaeDecoder {
    private static final float EPS = 1e-6f;
    private final VaeConfig config;
    private final Conv2d postQuantConv;
    private final Conv2d convIn;
    private final ResnetBlock2D midResnet0;
    private final GroupNorm midAttnNorm;
    private final Attention midAttention;
    private final ResnetBlock2D midResnet1;
    private final List<List<ResnetBlock2D>> upResnets = new ArrayList<>();
    private final List<Upsample2D> upsamplers = new ArrayList<>();
    private final GroupNorm convNormOut;
    private final Conv2d convOut;

    public VaeDecoder(VaeConfig config) {
        this.config = config;
        List<Integer> channels = config.blockOutChannels();
        int levels = channels.size();
        int top = channels.get(levels - 1);
        int groups = config.normNumGroups();
        int latent = config.latentChannels();

        this.postQuantConv = new Conv2d("post_quant_conv", latent, latent, 1, 1, 0);
        this.convIn = Conv2d.same("decoder.conv_in", latent, top, 3);
        this.midResnet0 = new ResnetBlock2D("decoder.mid_block.resnets.0", top, top, 0, groups, EPS, 1f);
        String attn = "decoder.mid_block.attentions.0";
        this.midAttnNorm = config.midBlockAttention() ? new GroupNorm(attn + ".group_norm", top, groups, EPS) : null;
        this.midAttention = config.midBlockAttention() ? Attention.diffusers(attn, top, top, 1, top, true) : null;
        this.midResnet1 = new ResnetBlock2D("decoder.mid_block.resnets.1", top, top, 0, groups, EPS, 1f);

        int out = top;
        for (int i = 0; i < levels; i++) {
            int in = out;
            out = channels.get(levels - 1 - i);
            List<ResnetBlock2D> resnets = new ArrayList<>();
            for (int j = 0; j <= config.layersPerBlock(); j++) {
                resnets.add(new ResnetBlock2D("decoder.up_blocks." + i + ".resnets." + j, j == 0 ? in : out, out, 0,
                        groups, EPS, 1f));
            }
            upResnets.add(resnets);
            upsamplers.add(i < levels - 1 ? new Upsample2D("decoder.up_blocks." + i + ".upsamplers.0", out) : null);
        }
        this.convNormOut = new GroupNorm("decoder.conv_norm_out", channels.get(0), groups, EPS);
        this.convOut = Conv2d.same("decoder.conv_out", channels.get(0), config.outChannels(), 3);
    }

    public VaeConfig config() { return config; }

    /** The decoder's parameters (diffusers names, "decoder." and "post_quant_conv." prefixes) and shapes. */
    public static SequencedMap<String, int[]> parameterShapes(VaeConfig config) {
        return new VaeDecoder(config).parameterShapes();
    }

    public SequencedMap<String, int[]> parameterShapes() {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        postQuantConv.declare(shapes);
        convIn.declare(shapes);
        midResnet0.declare(shapes);
        if (midAttention != null) {
            midAttnNorm.declare(shapes);
            midAttention.declare(shapes);
        }
        midResnet1.declare(shapes);
        for (int i = 0; i < upResnets.size(); i++) {
            for (ResnetBlock2D r : upResnets.get(i)) r.declare(shapes);
            if (upsamplers.get(i) != null) upsamplers.get(i).declare(shapes);
        }
        convNormOut.declare(shapes);
        convOut.declare(shapes);
        return Collections.unmodifiableSequencedMap(shapes);
    }

    /**
     * Scaled latents [n, latent, h, w] (as the UNet sees them) → image [n, out, h·upscale, w·upscale], in about
     * [-1, 1] and not clamped.
     */
    public Tensor decode(Backend be, Weights p, Tensor latents) {
        Tensor z = be.zeros(latents.shape());
        be.scale(z, latents, 1f / config.scalingFactor(), z.size());
        Tensor h = convIn.forward(be, p, postQuantConv.forward(be, p, z));
        h = midResnet0.forward(be, p, h, null).out();
        if (midAttention != null) h = attend(be, p, h);
        h = midResnet1.forward(be, p, h, null).out();
        for (int i = 0; i < upResnets.size(); i++) {
            for (ResnetBlock2D r : upResnets.get(i)) h = r.forward(be, p, h, null).out();
            if (upsamplers.get(i) != null) h = upsamplers.get(i).forward(be, p, h).out();
        }
        return convOut.forward(be, p, convNormOut.forwardSilu(be, p, h).out());
    }

    /** The mid block's attention: x + to_out(attention(group_norm(x) as tokens)), one head over all channels. */
    private Tensor attend(Backend be, Weights p, Tensor x) {
        int n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
        Tensor normed = midAttnNorm.forward(be, p, x).out();
        Tensor tokens = be.zeros(n, hw, c);
        be.transpose(tokens, normed, n, c, hw);
        Tensor attended = midAttention.forward(be, p, tokens, tokens, false).out();
        Tensor out = be.zeros(x.shape());
        be.transpose(out, attended, n, hw, c);
        be.add(out, out, x, out.size());
        return out;
    }
}
