package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.model.nn.Conv2d;
import esdnative.model.nn.GroupNorm;
import esdnative.model.nn.Linear;
import esdnative.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' UNet2DConditionModel (SD1.x / SD2.x / SDXL), forward and backward on a {@link Backend}, llm.c style.
 *
 * <p>Forward: sinusoidal timestep embedding → time_embedding MLP (linear_1, SiLU, linear_2) = temb (SDXL adds
 * add_embedding(pooled text embedding | sinusoids of the six time ids), see {@link UNetConfig.TextTime});
 * conv_in → down blocks (each stage's output kept as a skip) → mid block → up blocks (each resnet concatenates
 * the latest skip) → conv_norm_out → SiLU → conv_out. {@link #forward} returns an {@link Activations} holding
 * what {@link #backward} needs; backward walks the blocks in mirror order and accumulates gradients w.r.t. every
 * parameter that has a gradient tensor, the latents and the context.
 *
 * <p>The model holds no weights: parameters come in as a {@link Weights} keyed by diffusers names (see
 * {@link #parameterShapes}), so a frozen and a trainable model can share every untrained tensor.
 */
public final class UNet2DConditionModel {
    private static final float MAX_PERIOD = 10000f;
    private final UNetConfig config;
    private final Conv2d convIn;
    private final Linear timeLinear1;
    private final Linear timeLinear2;
    private final Linear addLinear1;
    private final Linear addLinear2;
    private final List<DownBlock2D> downBlocks = new ArrayList<>();
    private final MidBlock2DCrossAttn midBlock;
    private final List<UpBlock2D> upBlocks = new ArrayList<>();
    private final GroupNorm convNormOut;
    private final Conv2d convOut;
    private final Evaluations evaluations = new Evaluations();

    /**
     * SDXL's added conditioning for a batch of n: the pooled text embeddings [n, textEmbedDim] and the
     * micro-conditioning ids [n · 6] (per sample: original height, width, crop top, left, target height, width).
     */
    public record TextTimeInputs(Tensor textEmbeds, float[] timeIds) {}

    /** What one forward pass keeps for backward, and its intermediates (named as diffusers' modules). */
    public static final class Activations {
        private final Tensor latents;
        private Tensor timeProj;
        private Tensor timeHidden;
        private Tensor timeHiddenAct;
        private Tensor timeEmbedding;
        private TextTimeInputs textTime;
        private Tensor addTimeProj;
        private Tensor addEmbeds;
        private Tensor addHidden;
        private Tensor addHiddenAct;
        private Tensor addEmbedding;
        private Tensor emb;
        private Tensor tembAct;
        private Tensor convIn;
        private final List<DownBlock2D.Act> down = new ArrayList<>();
        private MidBlock2DCrossAttn.Act mid;
        private final List<UpBlock2D.Act> up = new ArrayList<>();
        /** SiLU(norm_out(·)): its out is conv_out's input */
        private GroupNorm.Act normOut;
        private Tensor output;

        private Activations(Tensor latents) {
            this.latents = latents;
        }

        /** The noise prediction [n, outChannels, h, w]. */
        public Tensor output() { return output; }

        /** time_proj: the sinusoidal embedding [n, blockOut[0]]. */
        public Tensor timeProj() { return timeProj; }

        /** time_embedding: temb [n, timeEmbeddingDim]. */
        public Tensor timeEmbedding() { return timeEmbedding; }

        /** add_time_proj (SDXL): the time ids' sinusoids [n · 6, addition_time_embed_dim]. */
        public Tensor addTimeProj() { return addTimeProj; }

        /** add_embedding's input (SDXL): [text embeds | time ids' sinusoids] [n, inputDim]. */
        public Tensor addEmbeds() { return addEmbeds; }

        /** add_embedding (SDXL): [n, timeEmbeddingDim], added to temb. */
        public Tensor addEmbedding() { return addEmbedding; }

        public Tensor convIn() { return convIn; }

        public Tensor downBlockOutput(int i) { return down.get(i).out(); }

        public Tensor midBlockOutput() { return mid.out(); }

        public Tensor upBlockOutput(int i) { return up.get(i).out(); }
    }

    public UNet2DConditionModel(UNetConfig config) {
        this.config = config;
        List<Integer> channels = config.blockOutChannels();
        int levels = config.levels();
        int temb = config.timeEmbeddingDim();
        int groups = config.normNumGroups();
        float eps = config.normEps();
        boolean linear = config.useLinearProjection();

        this.convIn = Conv2d.same("conv_in", config.inChannels(), channels.get(0), config.convInKernel());
        this.timeLinear1 = new Linear("time_embedding.linear_1", channels.get(0), temb, true);
        this.timeLinear2 = new Linear("time_embedding.linear_2", temb, temb, true);
        UNetConfig.TextTime textTime = config.textTime();
        this.addLinear1 = textTime == null ? null : new Linear("add_embedding.linear_1", textTime.inputDim(), temb, true);
        this.addLinear2 = textTime == null ? null : new Linear("add_embedding.linear_2", temb, temb, true);

        int out = channels.get(0);
        for (int i = 0; i < levels; i++) {
            int in = out;
            out = channels.get(i);
            downBlocks.add(new DownBlock2D("down_blocks." + i,
                    config.downBlockTypes().get(i).equals(UNetConfig.CROSS_ATTN_DOWN), config.layersPerBlock().get(i),
                    in, out, temb, i < levels - 1, groups, eps, config.attentionHeads().get(i),
                    config.crossAttentionDim().get(i), config.transformerLayersPerBlock().get(i), linear));
        }

        int last = levels - 1;
        this.midBlock = new MidBlock2DCrossAttn("mid_block", channels.get(last), temb, groups, eps,
                config.midBlockScaleFactor(), config.attentionHeads().get(last), config.crossAttentionDim().get(last),
                config.transformerLayersPerBlock().get(last), linear);

        // up blocks mirror the down blocks: per-block settings are read in reverse
        out = channels.get(last);
        for (int i = 0; i < levels; i++) {
            int mirror = last - i;
            int prevOut = out;
            out = channels.get(mirror);
            int in = channels.get(Math.max(mirror - 1, 0));
            upBlocks.add(new UpBlock2D("up_blocks." + i, config.upBlockTypes().get(i).equals(UNetConfig.CROSS_ATTN_UP),
                    config.layersPerBlock().get(mirror) + 1, in, out, prevOut, temb, i < last, groups, eps,
                    config.attentionHeads().get(mirror), config.crossAttentionDim().get(mirror),
                    config.transformerLayersPerBlock().get(mirror), linear));
        }

        this.convNormOut = new GroupNorm("conv_norm_out", channels.get(0), groups, eps);
        this.convOut = Conv2d.same("conv_out", channels.get(0), config.outChannels(), config.convOutKernel());
    }

    public UNetConfig config() { return config; }

    /** Every parameter's diffusers name and shape, from the config alone (nothing is allocated). */
    public static SequencedMap<String, int[]> parameterShapes(UNetConfig config) {
        return new UNet2DConditionModel(config).parameterShapes();
    }

    public SequencedMap<String, int[]> parameterShapes() {
        SequencedMap<String, int[]> shapes = new LinkedHashMap<>();
        convIn.declare(shapes);
        timeLinear1.declare(shapes);
        timeLinear2.declare(shapes);
        if (addLinear1 != null) {
            addLinear1.declare(shapes);
            addLinear2.declare(shapes);
        }
        for (DownBlock2D b : downBlocks) b.declare(shapes);
        midBlock.declare(shapes);
        for (UpBlock2D b : upBlocks) b.declare(shapes);
        convNormOut.declare(shapes);
        convOut.declare(shapes);
        return Collections.unmodifiableSequencedMap(shapes);
    }

    /**
     * latents [n, in, h, w] (any size: a side that is not a multiple of {@link UNetConfig#spatialMultiple} is
     * halved rounding up and upsampled back to the skip's size, as diffusers does), one timestep per sample,
     * context [n, tokens, crossAttentionDim] → activations whose {@link Activations#output} is [n, out, h, w],
     * holding everything {@link #backward} needs.
     */
    public Activations forward(Backend be, Weights p, Tensor latents, float[] timesteps, Tensor context) {
        return run(be, p, latents, timesteps, context, null, true);
    }

    /** {@link #forward} of a UNet with SDXL's added conditioning ({@code textTime} null for one without). */
    public Activations forward(Backend be, Weights p, Tensor latents, float[] timesteps, Tensor context,
                               TextTimeInputs textTime) {
        return run(be, p, latents, timesteps, context, textTime, true);
    }

    /**
     * The noise prediction alone, for inference: the same computation as {@link #forward}, but each block's
     * activations are dropped once it has run and no attention probabilities are kept.
     */
    public Tensor predict(Backend be, Weights p, Tensor latents, float[] timesteps, Tensor context) {
        return run(be, p, latents, timesteps, context, null, false).output();
    }

    /** {@link #predict} of a UNet with SDXL's added conditioning ({@code textTime} null for one without). */
    public Tensor predict(Backend be, Weights p, Tensor latents, float[] timesteps, Tensor context,
                          TextTimeInputs textTime) {
        return run(be, p, latents, timesteps, context, textTime, false).output();
    }

    private Activations run(Backend be, Weights p, Tensor latents, float[] timesteps, Tensor context,
                            TextTimeInputs textTime, boolean train) {
        checkInputs(latents, timesteps, context, textTime);
        int n = latents.dim(0);
        evaluations.addForwards(n);
        Activations a = new Activations(latents);

        // time embedding; SiLU(temb) is what every resnet's time_emb_proj reads
        int c0 = config.blockOutChannels().get(0);
        a.timeProj = be.zeros(n, c0);
        be.timestepEmbedding(a.timeProj, timesteps, c0, config.flipSinToCos(), config.freqShift(), MAX_PERIOD);
        a.timeHidden = timeLinear1.forward(be, p, a.timeProj, n);
        a.timeHiddenAct = be.zeros(a.timeHidden.shape());
        be.silu(a.timeHiddenAct, a.timeHidden, a.timeHidden.size());
        a.timeEmbedding = timeLinear2.forward(be, p, a.timeHiddenAct, n);
        a.emb = a.timeEmbedding;
        if (textTime != null) {
            addTextTime(be, p, a, textTime);
            a.emb = be.zeros(a.timeEmbedding.shape());
            be.add(a.emb, a.timeEmbedding, a.addEmbedding, a.emb.size());
        }
        a.tembAct = be.zeros(a.emb.shape());
        be.silu(a.tembAct, a.emb, a.tembAct.size());

        a.convIn = convIn.forward(be, p, latents);
        // skip connections: the down path pushes conv_in's output and every down-block state; each up block pops
        Deque<Tensor> skips = new ArrayDeque<>();
        skips.push(a.convIn);
        Tensor h = a.convIn;
        // inference recycles each block's temporaries once the block has run; training keeps them for backward
        for (DownBlock2D b : downBlocks) {
            try (Scope scope = Scope.unlessTraining(be, train)) {
                DownBlock2D.Act d = b.forward(be, p, h, a.tembAct, context, train);
                if (train) a.down.add(d);
                d.states().forEach(scope::keep);
                d.states().forEach(skips::push);
                h = d.out();
            }
        }

        try (Scope scope = Scope.unlessTraining(be, train)) {
            MidBlock2DCrossAttn.Act mid = midBlock.forward(be, p, h, a.tembAct, context, train);
            if (train) a.mid = mid;
            scope.keep(mid.out());
            h = mid.out();
        }

        for (UpBlock2D b : upBlocks) {
            try (Scope scope = Scope.unlessTraining(be, train)) {
                UpBlock2D.Act u = b.forward(be, p, h, skips, a.tembAct, context, train);
                if (train) a.up.add(u);
                scope.keep(u.out());
                h = u.out();
            }
        }

        a.normOut = convNormOut.forwardSilu(be, p, h);
        a.output = convOut.forward(be, p, a.normOut.out());
        return a;
    }

    /** SDXL's add_embedding(text embeds | sinusoids of the time ids), diffusers' "text_time" branch. */
    private void addTextTime(Backend be, Weights p, Activations a, TextTimeInputs in) {
        int n = in.textEmbeds().dim(0), textDim = in.textEmbeds().dim(1);
        int idDim = config.textTime().timeEmbedDim(), idsDim = UNetConfig.TextTime.TIME_IDS * idDim;
        a.textTime = in;
        a.addTimeProj = be.zeros(in.timeIds().length, idDim);
        be.timestepEmbedding(a.addTimeProj, in.timeIds(), idDim, config.flipSinToCos(), config.freqShift(), MAX_PERIOD);
        // one row per sample: its text embedding, then its six ids' sinusoids
        a.addEmbeds = be.zeros(n, textDim + idsDim);
        be.concatChannels(a.addEmbeds, in.textEmbeds(), a.addTimeProj, n, textDim, idsDim, 1);
        a.addHidden = addLinear1.forward(be, p, a.addEmbeds, n);
        a.addHiddenAct = be.zeros(a.addHidden.shape());
        be.silu(a.addHiddenAct, a.addHidden, a.addHidden.size());
        a.addEmbedding = addLinear2.forward(be, p, a.addHiddenAct, n);
    }

    /**
     * Accumulates, for the loss whose gradient w.r.t. the output is {@code dOutput}: every parameter gradient
     * present in {@code grads} (null: none), dLatents and dContext (either may be null when not wanted).
     */
    public void backward(Backend be, Weights p, Weights grads, Activations a, Tensor dOutput, Tensor dLatents,
                         Tensor dContext) {
        backward(be, p, grads, a, dOutput, dLatents, dContext, null);
    }

    /** {@link #backward}, and with SDXL's added conditioning dTextEmbeds += ∂/∂text embeds (may be null). */
    public void backward(Backend be, Weights p, Weights grads, Activations a, Tensor dOutput, Tensor dLatents,
                         Tensor dContext, Tensor dTextEmbeds) {
        evaluations.addBackwards(a.latents.dim(0));
        Tensor dTembAct = be.zeros(a.tembAct.shape());
        // the skips' gradients: each up block pushes back those it popped, each down block pops its states'
        Deque<Tensor> dSkips = new ArrayDeque<>();

        Tensor dAct = be.zeros(a.normOut.out().shape());
        convOut.backward(be, p, grads, dAct, dOutput, a.normOut.out());
        Tensor upOut = a.up.getLast().out();
        Tensor d = be.zeros(upOut.shape());
        convNormOut.backwardSilu(be, p, grads, d, dAct, upOut, a.normOut);

        for (int i = upBlocks.size() - 1; i >= 0; i--) {
            Tensor in = i > 0 ? a.up.get(i - 1).out() : a.mid.out();
            Tensor dIn = be.zeros(in.shape());
            upBlocks.get(i).backward(be, p, grads, dIn, dSkips, dTembAct, dContext, d, a.up.get(i));
            d = dIn;
        }

        Tensor downOut = a.down.getLast().out();
        Tensor dMidIn = be.zeros(downOut.shape());
        midBlock.backward(be, p, grads, dMidIn, dTembAct, dContext, d, a.mid);
        d = dMidIn;

        for (int i = downBlocks.size() - 1; i >= 0; i--) {
            Tensor in = i > 0 ? a.down.get(i - 1).out() : a.convIn;
            Tensor dIn = be.zeros(in.shape());
            downBlocks.get(i).backward(be, p, grads, dIn, dTembAct, dContext, d, dSkips, a.down.get(i));
            d = dIn;
        }
        be.axpy(d, 1f, dSkips.pop(), d.size()); // conv_in's output is also the first skip
        convIn.backward(be, p, grads, dLatents, d, a.latents);

        // time embedding MLP (and SDXL's add_embedding, summed into the same emb); the sinusoids have no parameters
        Tensor dTemb = be.zeros(a.emb.shape());
        be.siluBackward(dTemb, dTembAct, a.emb, dTemb.size());
        int n = a.latents.dim(0);
        if (a.textTime != null) {
            Tensor dAddHiddenAct = be.zeros(a.addHidden.shape());
            addLinear2.backward(be, p, grads, dAddHiddenAct, dTemb, a.addHiddenAct, n);
            Tensor dAddHidden = be.zeros(a.addHidden.shape());
            be.siluBackward(dAddHidden, dAddHiddenAct, a.addHidden, dAddHidden.size());
            Tensor dAddEmbeds = dTextEmbeds == null ? null : be.zeros(a.addEmbeds.shape());
            addLinear1.backward(be, p, grads, dAddEmbeds, dAddHidden, a.addEmbeds, n);
            if (dTextEmbeds != null) {
                int textDim = a.textTime.textEmbeds().dim(1);
                be.splitChannels(dTextEmbeds, null, dAddEmbeds, n, textDim, a.addEmbeds.dim(1) - textDim, 1);
            }
        }
        Tensor dHiddenAct = be.zeros(a.timeHidden.shape());
        timeLinear2.backward(be, p, grads, dHiddenAct, dTemb, a.timeHiddenAct, n);
        Tensor dHidden = be.zeros(a.timeHidden.shape());
        be.siluBackward(dHidden, dHiddenAct, a.timeHidden, dHidden.size());
        timeLinear1.backward(be, p, grads, null, dHidden, a.timeProj, n);
    }

    /** The forwards and backwards this model instance has run, in samples. */
    public Evaluations evaluations() { return evaluations; }

    private void checkInputs(Tensor latents, float[] timesteps, Tensor context, TextTimeInputs textTime) {
        if (latents.rank() != 4 || latents.dim(1) != config.inChannels()) {
            throw new IllegalArgumentException("latents must be [n, " + config.inChannels() + ", h, w], got "
                    + Arrays.toString(latents.shape()));
        }
        int n = latents.dim(0);
        if (timesteps.length != n) {
            throw new IllegalArgumentException(n + " samples need " + n + " timesteps, got " + timesteps.length);
        }
        for (int i = 0; i < config.levels(); i++) {
            int dim = config.crossAttentionDim().get(i);
            if (context.rank() != 3 || context.dim(0) != n || context.dim(2) != dim) {
                throw new IllegalArgumentException("context must be [" + n + ", tokens, " + dim + "], got "
                        + Arrays.toString(context.shape()));
            }
        }
        UNetConfig.TextTime tt = config.textTime();
        if (tt == null && textTime != null) {
            throw new IllegalArgumentException("this UNet has no added conditioning (addition_embed_type null)");
        }
        if (tt != null) {
            if (textTime == null) {
                throw new IllegalArgumentException("this UNet needs text embeddings and time ids (addition_embed_type text_time)");
            }
            Tensor te = textTime.textEmbeds();
            if (te.rank() != 2 || te.dim(0) != n || te.dim(1) != tt.textEmbedDim()) {
                throw new IllegalArgumentException("text embeddings must be [" + n + ", " + tt.textEmbedDim() + "], got "
                        + Arrays.toString(te.shape()));
            }
            if (textTime.timeIds().length != n * UNetConfig.TextTime.TIME_IDS) {
                throw new IllegalArgumentException(n + " samples need " + n * UNetConfig.TextTime.TIME_IDS
                        + " time ids, got " + textTime.timeIds().length);
            }
        }
    }
}
