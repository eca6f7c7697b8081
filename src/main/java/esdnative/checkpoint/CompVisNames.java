package esdnative.checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one diffusers ↔ CompVis (LDM single-file) name table for SD1.x-architecture models: UNet
 * ({@code model.diffusion_model.}), CLIP text encoder ({@code cond_stage_model.transformer.}) and VAE
 * ({@code first_stage_model.}).
 *
 * <p>The rules are those of diffusers' {@code scripts/convert_diffusers_to_original_stable_diffusion.py}
 * (its unet/vae conversion maps), generalised from SD's fixed 4 levels × 2 layers to any {@link Topology}:
 * diffusers {@code down_blocks.i.resnets.j} is CompVis {@code input_blocks.(P+1)i+j+1.0} for P layers per block,
 * and the VAE decoder's {@code up_blocks.i} is {@code up.(L-1-i)}. VAE mid-attention accepts both diffusers
 * naming generations ({@code query/key/value/proj_attn} before 0.21, {@code to_q/to_k/to_v/to_out.0} since) and
 * produces the new one; its q/k/v/proj_out weights are 1×1 convolutions [C, C, 1, 1] in CompVis and linear
 * [C, C] in diffusers ({@link #compVisShape}, {@link #diffusersShape}). SDXL's add_embedding is sgm's
 * {@code label_emb.0.0} / {@code label_emb.0.2} (diffusers' {@code convert_diffusers_to_original_sdxl.py}). SD2's OpenCLIP text encoder
 * ({@code cond_stage_model.model.}, fused q/k/v) is {@link OpenClipNames}'s.
 */
public final class CompVisNames {
    /** A diffusers model folder component and its CompVis prefix. */
    public enum Component {
        UNET("unet", "model.diffusion_model."),
        TEXT_ENCODER("text_encoder", "cond_stage_model.transformer."),
        VAE("vae", "first_stage_model.");

        private final String folder;
        private final String compVisPrefix;

        Component(String folder, String compVisPrefix) {
            this.folder = folder;
            this.compVisPrefix = compVisPrefix;
        }

        /** The sub-folder of a diffusers pipeline folder, e.g. "unet". */
        public String folder() { return folder; }

        /** The key prefix in a CompVis single file, e.g. "model.diffusion_model.". */
        public String compVisPrefix() { return compVisPrefix; }
    }

    /**
     * What numbers the CompVis blocks: UNet levels (len(block_out_channels)), UNet layers per block, whether each
     * diffusers up block has attentions (decides the upsampler's slot), VAE levels and VAE layers per block.
     */
    public record Topology(int unetLevels, int unetLayersPerBlock, boolean[] unetUpAttention,
                           int vaeLevels, int vaeLayersPerBlock) {
        public Topology {
            unetUpAttention = unetUpAttention.clone();
            if (unetUpAttention.length != unetLevels) throw new IllegalArgumentException("one attention flag per level");
        }

        @Override
        public boolean[] unetUpAttention() { return unetUpAttention.clone(); }

        @Override
        public boolean equals(Object o) {
            return o instanceof Topology t && t.unetLevels == unetLevels && t.unetLayersPerBlock == unetLayersPerBlock
                    && Arrays.equals(t.unetUpAttention, unetUpAttention) && t.vaeLevels == vaeLevels
                    && t.vaeLayersPerBlock == vaeLayersPerBlock;
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(unetUpAttention) + 31 * (unetLevels + 31 * (unetLayersPerBlock + 31 * (vaeLevels + 31 * vaeLayersPerBlock)));
        }

        @Override
        public String toString() {
            return "Topology[unet " + unetLevels + " levels × " + unetLayersPerBlock + ", up attention "
                    + Arrays.toString(unetUpAttention) + "; vae " + vaeLevels + " levels × " + vaeLayersPerBlock + "]";
        }

        /** SD 1.x / 2.x: 4 levels × 2 layers, attention in up blocks 1..3; VAE 4 levels × 2 layers. */
        public static Topology stableDiffusion() {
            return new Topology(4, 2, new boolean[] {false, true, true, true}, 4, 2);
        }

        /** Reads the topology off diffusers names (UNet names without prefix, VAE names without prefix). */
        public static Topology fromDiffusers(Collection<String> unetNames, Collection<String> vaeNames) {
            int levels = maxIndex(unetNames, "^down_blocks\\.(\\d+)\\.") + 1;
            int layers = maxIndex(unetNames, "^down_blocks\\.\\d+\\.resnets\\.(\\d+)\\.") + 1;
            boolean[] upAttention = new boolean[Math.max(levels, 0)];
            for (int i = 0; i < upAttention.length; i++) {
                String prefix = "up_blocks." + i + ".attentions.";
                upAttention[i] = unetNames.stream().anyMatch(n -> n.startsWith(prefix));
            }
            int vaeLevels = Math.max(maxIndex(vaeNames, "^encoder\\.down_blocks\\.(\\d+)\\."),
                    maxIndex(vaeNames, "^decoder\\.up_blocks\\.(\\d+)\\.")) + 1;
            int vaeLayers = Math.max(maxIndex(vaeNames, "^encoder\\.down_blocks\\.\\d+\\.resnets\\.(\\d+)\\.") + 1,
                    maxIndex(vaeNames, "^decoder\\.up_blocks\\.\\d+\\.resnets\\.(\\d+)\\."));
            return new Topology(levels, layers, upAttention, vaeLevels, vaeLayers);
        }

        /** Reads the topology off the names of a CompVis single file (with their prefixes). */
        public static Topology fromCompVis(Collection<String> names) {
            String unet = Pattern.quote(Component.UNET.compVisPrefix());
            String vae = Pattern.quote(Component.VAE.compVisPrefix());
            // input_blocks: 0 = conv_in, then per level P layers and (but for the last level) one downsampler
            int firstDownsample = minIndex(names, "^" + unet + "input_blocks\\.(\\d+)\\.0\\.op\\.");
            int outputBlocks = maxIndex(names, "^" + unet + "output_blocks\\.(\\d+)\\.") + 1;
            int layers = firstDownsample > 0 ? firstDownsample - 1 : maxIndex(names, "^" + unet + "input_blocks\\.(\\d+)\\.");
            int levels = layers > 0 ? outputBlocks / (layers + 1) : 0;
            boolean[] upAttention = new boolean[levels];
            for (int i = 0; i < levels; i++) {
                // slot 1 of an up block's first layer holds its attention, if it has one
                Pattern attention = Pattern.compile("^" + unet + "output_blocks\\." + (layers + 1) * i + "\\.1\\.");
                upAttention[i] = names.stream().anyMatch(n -> attention.matcher(n).find());
            }
            int vaeLevels = Math.max(maxIndex(names, "^" + vae + "encoder\\.down\\.(\\d+)\\."),
                    maxIndex(names, "^" + vae + "decoder\\.up\\.(\\d+)\\.")) + 1;
            int vaeLayers = Math.max(maxIndex(names, "^" + vae + "encoder\\.down\\.\\d+\\.block\\.(\\d+)\\.") + 1,
                    maxIndex(names, "^" + vae + "decoder\\.up\\.\\d+\\.block\\.(\\d+)\\."));
            return new Topology(levels, layers, upAttention, vaeLevels, vaeLayers);
        }

        private static int maxIndex(Collection<String> names, String regex) {
            Pattern p = Pattern.compile(regex);
            int max = -1;
            for (String n : names) {
                Matcher m = p.matcher(n);
                if (m.find()) max = Math.max(max, Integer.parseInt(m.group(1)));
            }
            return max;
        }

        private static int minIndex(Collection<String> names, String regex) {
            Pattern p = Pattern.compile(regex);
            int min = -1;
            for (String n : names) {
                Matcher m = p.matcher(n);
                if (m.find()) {
                    int i = Integer.parseInt(m.group(1));
                    min = min < 0 ? i : Math.min(min, i);
                }
            }
            return min;
        }
    }

    /** A diffusers tensor: which component, and its name inside that component's file. */
    public record DiffusersName(Component component, String name) {}

    /** How the part after a matched prefix is renamed. */
    private enum Inner { SAME, UNET_RESNET, VAE_RESNET, VAE_ATTENTION }

    /** CompVis prefix (without the component prefix) ↔ diffusers prefix, and how the rest is renamed. */
    private record Rule(Component component, String compVis, String diffusers, Inner inner) {}

    // resnet parts (CompVis, diffusers)
    private static final List<String[]> UNET_RESNET = List.of(
            new String[] {"in_layers.0.", "norm1."}, new String[] {"in_layers.2.", "conv1."},
            new String[] {"out_layers.0.", "norm2."}, new String[] {"out_layers.3.", "conv2."},
            new String[] {"emb_layers.1.", "time_emb_proj."}, new String[] {"skip_connection.", "conv_shortcut."});
    private static final List<String[]> VAE_RESNET = List.<String[]>of(
            new String[] {"nin_shortcut.", "conv_shortcut."});
    // VAE mid-attention parts: the first diffusers spelling is the one we produce (diffusers ≥ 0.21)
    private static final List<String[]> VAE_ATTENTION = List.of(
            new String[] {"norm.", "group_norm."},
            new String[] {"q.", "to_q.", "query."}, new String[] {"k.", "to_k.", "key."},
            new String[] {"v.", "to_v.", "value."}, new String[] {"proj_out.", "to_out.0.", "proj_attn."});
    private static final List<String> VAE_CONV_AS_LINEAR = List.of("q.weight", "k.weight", "v.weight", "proj_out.weight");

    private final Topology topology;
    private final List<Rule> rules;

    private CompVisNames(Topology topology, List<Rule> rules) {
        this.topology = topology;
        this.rules = rules;
    }

    /** The table for models of this topology. */
    public static CompVisNames of(Topology t) {
        List<Rule> r = new ArrayList<>();
        unetRules(t, r);
        vaeRules(t, r);
        r.add(new Rule(Component.TEXT_ENCODER, "text_model.", "text_model.", Inner.SAME));
        return new CompVisNames(t, List.copyOf(r));
    }

    public Topology topology() { return topology; }

    private static void unetRules(Topology t, List<Rule> r) {
        Component u = Component.UNET;
        for (String[] fixed : new String[][] {
                {"time_embed.0.", "time_embedding.linear_1."}, {"time_embed.2.", "time_embedding.linear_2."},
                {"input_blocks.0.0.", "conv_in."}, {"out.0.", "conv_norm_out."}, {"out.2.", "conv_out."},
                // SDXL's added conditioning: sgm's label_emb = Sequential(Sequential(Linear, SiLU, Linear))
                {"label_emb.0.0.", "add_embedding.linear_1."}, {"label_emb.0.2.", "add_embedding.linear_2."}}) {
            r.add(new Rule(u, fixed[0], fixed[1], Inner.SAME));
        }
        int stride = t.unetLayersPerBlock() + 1;   // CompVis blocks per level: P layers + one down/upsampler
        for (int i = 0; i < t.unetLevels(); i++) {
            for (int j = 0; j < t.unetLayersPerBlock(); j++) {
                int in = stride * i + j + 1;
                r.add(new Rule(u, "input_blocks." + in + ".0.", "down_blocks." + i + ".resnets." + j + ".", Inner.UNET_RESNET));
                r.add(new Rule(u, "input_blocks." + in + ".1.", "down_blocks." + i + ".attentions." + j + ".", Inner.SAME));
            }
            for (int j = 0; j <= t.unetLayersPerBlock(); j++) {
                int out = stride * i + j;
                r.add(new Rule(u, "output_blocks." + out + ".0.", "up_blocks." + i + ".resnets." + j + ".", Inner.UNET_RESNET));
                if (t.unetUpAttention[i]) {   // else slot 1 of the last layer is the upsampler
                    r.add(new Rule(u, "output_blocks." + out + ".1.", "up_blocks." + i + ".attentions." + j + ".", Inner.SAME));
                }
            }
            if (i < t.unetLevels() - 1) {
                r.add(new Rule(u, "input_blocks." + stride * (i + 1) + ".0.op.", "down_blocks." + i + ".downsamplers.0.conv.", Inner.SAME));
                int slot = t.unetUpAttention[i] ? 2 : 1;
                r.add(new Rule(u, "output_blocks." + (stride * i + t.unetLayersPerBlock()) + "." + slot + ".",
                        "up_blocks." + i + ".upsamplers.0.", Inner.SAME));
            }
        }
        r.add(new Rule(u, "middle_block.1.", "mid_block.attentions.0.", Inner.SAME));
        r.add(new Rule(u, "middle_block.0.", "mid_block.resnets.0.", Inner.UNET_RESNET));
        r.add(new Rule(u, "middle_block.2.", "mid_block.resnets.1.", Inner.UNET_RESNET));
    }

    private static void vaeRules(Topology t, List<Rule> r) {
        Component v = Component.VAE;
        for (String same : List.of("encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.", "decoder.conv_out.",
                "quant_conv.", "post_quant_conv.")) {
            r.add(new Rule(v, same, same, Inner.SAME));
        }
        for (String side : List.of("encoder.", "decoder.")) {
            r.add(new Rule(v, side + "norm_out.", side + "conv_norm_out.", Inner.SAME));
            r.add(new Rule(v, side + "mid.attn_1.", side + "mid_block.attentions.0.", Inner.VAE_ATTENTION));
            for (int k = 0; k < 2; k++) {
                r.add(new Rule(v, side + "mid.block_" + (k + 1) + ".", side + "mid_block.resnets." + k + ".", Inner.VAE_RESNET));
            }
        }
        int levels = t.vaeLevels();
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j < t.vaeLayersPerBlock(); j++) {
                r.add(new Rule(v, "encoder.down." + i + ".block." + j + ".", "encoder.down_blocks." + i + ".resnets." + j + ".", Inner.VAE_RESNET));
            }
            // the decoder counts its levels from the bottom in CompVis, from the top in diffusers
            int up = levels - 1 - i;
            for (int j = 0; j <= t.vaeLayersPerBlock(); j++) {
                r.add(new Rule(v, "decoder.up." + up + ".block." + j + ".", "decoder.up_blocks." + i + ".resnets." + j + ".", Inner.VAE_RESNET));
            }
            if (i < levels - 1) {
                r.add(new Rule(v, "encoder.down." + i + ".downsample.", "encoder.down_blocks." + i + ".downsamplers.0.", Inner.SAME));
                r.add(new Rule(v, "decoder.up." + up + ".upsample.", "decoder.up_blocks." + i + ".upsamplers.0.", Inner.SAME));
            }
        }
    }

    /** The full CompVis name (with component prefix) of a diffusers tensor, or null if the table has none. */
    public String toCompVis(Component component, String diffusersName) {
        for (Rule rule : rules) {
            if (rule.component() != component || !diffusersName.startsWith(rule.diffusers())) continue;
            String rest = diffusersName.substring(rule.diffusers().length());
            String inner = switch (rule.inner()) {
                case SAME -> rest;
                case UNET_RESNET -> renamePart(rest, UNET_RESNET, true);
                case VAE_RESNET -> renamePart(rest, VAE_RESNET, true);
                case VAE_ATTENTION -> renamePart(rest, VAE_ATTENTION, true);
            };
            return inner == null ? null : component.compVisPrefix() + rule.compVis() + inner;
        }
        return null;
    }

    /** The diffusers component and name of a CompVis tensor, or null (EMA copies, schedules, SD2 text encoder, ...). */
    public DiffusersName toDiffusers(String compVisName) {
        for (Rule rule : rules) {
            String prefix = rule.component().compVisPrefix() + rule.compVis();
            if (!compVisName.startsWith(prefix)) continue;
            String rest = compVisName.substring(prefix.length());
            String inner = switch (rule.inner()) {
                case SAME -> rest;
                case UNET_RESNET -> renamePart(rest, UNET_RESNET, false);
                case VAE_RESNET -> renamePart(rest, VAE_RESNET, false);
                case VAE_ATTENTION -> renamePart(rest, VAE_ATTENTION, false);
            };
            return inner == null ? null : new DiffusersName(rule.component(), rule.diffusers() + inner);
        }
        return null;
    }

    /**
     * Renames the leading part of {@code rest} between CompVis (column 0 of {@code parts}) and diffusers (columns
     * 1.., the first being the spelling we write). Parts not in the table keep their name, except in the VAE
     * attention table, which lists every part (an unknown one yields null).
     */
    private static String renamePart(String rest, List<String[]> parts, boolean toCompVis) {
        for (String[] p : parts) {
            if (toCompVis) {
                for (int c = 1; c < p.length; c++) {
                    if (rest.startsWith(p[c])) return p[0] + rest.substring(p[c].length());
                }
            } else if (rest.startsWith(p[0])) {
                return p[1] + rest.substring(p[0].length());
            }
        }
        return parts == VAE_ATTENTION ? null : rest;
    }

    /** The tensor's shape in CompVis layout: VAE attention projections gain two unit dims ([C, C] → [C, C, 1, 1]). */
    public static long[] compVisShape(String compVisName, long[] diffusersShape) {
        if (isVaeAttentionProjection(compVisName) && diffusersShape.length == 2) {
            return new long[] {diffusersShape[0], diffusersShape[1], 1, 1};
        }
        return diffusersShape.clone();
    }

    /** The tensor's shape in diffusers layout: VAE attention projections lose their unit dims. */
    public static long[] diffusersShape(String compVisName, long[] compVisShape) {
        if (isVaeAttentionProjection(compVisName) && compVisShape.length == 4) {
            if (compVisShape[2] != 1 || compVisShape[3] != 1) {
                throw new IllegalArgumentException(compVisName + ": expected a 1x1 convolution, got " + Arrays.toString(compVisShape));
            }
            return new long[] {compVisShape[0], compVisShape[1]};
        }
        return compVisShape.clone();
    }

    private static boolean isVaeAttentionProjection(String compVisName) {
        String prefix = Component.VAE.compVisPrefix();
        for (String side : List.of("encoder.", "decoder.")) {
            String attention = prefix + side + "mid.attn_1.";
            if (compVisName.startsWith(attention) && VAE_CONV_AS_LINEAR.contains(compVisName.substring(attention.length()))) {
                return true;
            }
        }
        return false;
    }
}
