package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.util.UserError;
import esdnative.model.StableDiffusion;
import esdnative.model.Weights;
import esdnative.model.sdxl.MicroConditioning;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.UNetConfig;
import esdnative.sched.DdimConfig;
import esdnative.model.unet.Evaluations;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetWeights;
import esdnative.optim.Adam;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The ESD training loop of the paper code (ESD-SPEC.md, steps 1–7), one iteration at a time:
 * draw a concept, a noise level and start noise; let the <em>trainable</em> model sample z with guided DDIM from
 * that noise; take e0, ep from the frozen model and en from the trainable one at (z, t_ddpm); one Adam step on
 * mean((en − (e0 − η(ep − e0)))²) over the parameters the train method selects.
 *
 * <p>With {@link Sampler#FROZEN} the original model samples z, as the authors' 2025 code does. With trajectory
 * reuse ({@code --fast}: frozen sampler, aligned schedule, {@link Settings#reuse} &gt; 0) one guided trajectory
 * serves several iterations: iteration k of it trains on (z_k, timesteps[k]) with the e0/ep its sampling step
 * already computed, so an iteration costs en and its backward plus a share of the trajectory.
 */
public final class EsdTrainer {
    /** A run's settings: {@link #paper} gives the paper code's, the withers change one value each. */
    public record Settings(List<String> concepts, TrainMethod method, int iterations, float lr, float negativeGuidance,
                           float startGuidance, int ddimSteps, Schedule schedule, int resolution, long seed,
                           Sampler sampler, int reuse, Target target) {
        /**
         * @param sampler which weights sample z
         * @param reuse   points of one frozen trajectory that iterations train on (≥ 1, at most ddimSteps), or 0:
         *                every iteration samples its own z
         * @param target   the regression target: the paper's e0 − η(ep − e0) or the 2025 code's ep − η(ep − e0)
         */
        public Settings {
            concepts = List.copyOf(concepts);
            if (concepts.isEmpty() || concepts.stream().anyMatch(String::isBlank)) throw new UserError("empty concept");
            if (iterations < 1) throw new UserError("iterations must be at least 1, got " + iterations);
            if (!(lr > 0)) throw new UserError("the learning rate must be positive, got " + lr);
            if (ddimSteps < 1) throw new UserError("DDIM steps must be at least 1, got " + ddimSteps);
            if (reuse < 0) throw new UserError("trajectory reuse must be at least 1 point, got " + reuse);
            if (reuse > 0 && (sampler != Sampler.FROZEN || schedule != Schedule.ALIGNED)) {
                throw new UserError("trajectory reuse needs the frozen sampler and the aligned schedule");
            }
            if (reuse > ddimSteps) {
                throw new UserError("a trajectory has " + ddimSteps + " points (one per DDIM step), reusing " + reuse + " asked for");
            }
        }

        /**
         * The paper code's run (ESD-SPEC.md): ESD-x (the train command's default method), 1000 iterations, Adam at
         * lr 1e-5, negative guidance η 1, start guidance 3, 50 DDIM steps on the paper's schedule, 512 px, seed 0;
         * the trainable model samples every iteration's z. The withers change one value each.
         */
        public static Settings paper(List<String> concepts) {
            return new Settings(concepts, TrainMethod.XATTN, 1000, 1e-5f, 1f, 3f, 50, Schedule.PAPER, 512, 0,
                    Sampler.TRAINABLE, 0, Target.PAPER);
        }

        public Settings withMethod(TrainMethod m) {
            return new Settings(concepts, m, iterations, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    resolution, seed, sampler, reuse, target);
        }

        public Settings withIterations(int n) {
            return new Settings(concepts, method, n, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    resolution, seed, sampler, reuse, target);
        }

        public Settings withLr(float learningRate) {
            return new Settings(concepts, method, iterations, learningRate, negativeGuidance, startGuidance, ddimSteps,
                    schedule, resolution, seed, sampler, reuse, target);
        }

        /** η in the target e0 − η (ep − e0) (or ep − η (ep − e0), see {@link #withTarget}). */
        public Settings withNegativeGuidance(float eta) {
            return new Settings(concepts, method, iterations, lr, eta, startGuidance, ddimSteps, schedule, resolution,
                    seed, sampler, reuse, target);
        }

        /** The guidance scale of z's sampling. */
        public Settings withStartGuidance(float scale) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, scale, ddimSteps, schedule,
                    resolution, seed, sampler, reuse, target);
        }

        public Settings withDdimSteps(int steps) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, steps, schedule,
                    resolution, seed, sampler, reuse, target);
        }

        public Settings withSchedule(Schedule s) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps, s,
                    resolution, seed, sampler, reuse, target);
        }

        /** Image size in pixels (the latents are resolution / the VAE factor). */
        public Settings withResolution(int pixels) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    pixels, seed, sampler, reuse, target);
        }

        public Settings withSeed(long s) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    resolution, s, sampler, reuse, target);
        }

        /** Which weights sample z, without trajectory reuse (see {@link #fast} for reuse). */
        public Settings withSampler(Sampler s) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    resolution, seed, s, reuse, target);
        }

        /** The regression target (the paper's by default). */
        public Settings withTarget(Target t) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps, schedule,
                    resolution, seed, sampler, reuse, t);
        }

        /** {@code --fast}: the frozen model samples, the aligned schedule, {@code reuse} points per trajectory. */
        public Settings fast(int reusePoints) {
            return new Settings(concepts, method, iterations, lr, negativeGuidance, startGuidance, ddimSteps,
                    Schedule.ALIGNED, resolution, seed, Sampler.FROZEN, reusePoints, target);
        }
    }

    /**
     * One iteration's random choices: drawn, or replayed from a trace.
     *
     * @param startCode  the start noise of z's sampling
     * @param trajectory with trajectory reuse, the number of the pooled trajectory z comes from (its start noise
     *                   is startCode, z its point plan.tEnc()); 0 when the iteration samples its own z
     */
    public record Draw(String concept, Schedule.Plan plan, float[] startCode, int trajectory) {}

    /** What one iteration did, and the UNet evaluations it ran (counted by the model). */
    public record Iteration(int index, Draw draw, float loss, double seconds, Evaluations.Count evaluations) {}

    /**
     * What the loop uses of a model: the UNet and its scheduler, the VAE factor, how a prompt conditions the UNet
     * (SD: the text encoder's last hidden state; SDXL: both encoders' penultimate states and the pooled embedding),
     * the time ids of SDXL's micro-conditioning (null for SD) and the unconditional input of z's sampling (SD: the
     * encoded ""; SDXL: its pipeline's, zeros when the model forces them).
     */
    private record Parts(UNetConfig unet, Weights unetWeights, DdimConfig scheduler, int vaeScaleFactor,
                         Function<String, PromptEmbeds> encoder, float[] timeIds, boolean zerosUncondInSampling) {}

    private final Backend be;
    private final Parts model;
    private final Settings settings;
    private final UNet2DConditionModel unet;
    private final DdimScheduler scheduler;
    private final int[] timesteps;
    private final int[] latentShape;
    private final TrainableSubset subset;
    private final Adam adam;
    private final Rng rng;
    private final Map<String, PromptEmbeds> contexts = new HashMap<>();
    private final TrajectoryPool pool = new TrajectoryPool();
    private Trajectory current; // the pooled trajectory sampled last, as far as it was needed
    private int completed;

    public EsdTrainer(Backend be, StableDiffusion model, Settings settings) {
        this(be, new Parts(model.unet(), model.unetWeights(), model.scheduler(), model.vaeScaleFactor(),
                p -> new PromptEmbeds(model.textEncoder().forward(model.tokenizer().encodePadded(p), 1), null), null,
                false), settings);
    }

    /**
     * ESD on SDXL, as the authors' esd_sdxl.py conditions it: every UNet call gets the prompt's pooled embedding and
     * the time ids of an uncropped image of the run's resolution; the null prompt is the encoded "" with its pooled
     * embedding; z's sampling uses the pipeline's unconditional input (zeros when the model forces them), except with
     * trajectory reuse, whose trajectory steps give the loss's e0 and so run on the encoded "" ({@link Trajectory}).
     */
    public EsdTrainer(Backend be, StableDiffusionXL model, Settings settings) {
        this(be, new Parts(model.unet(), model.unetWeights(), model.scheduler(), model.vaeScaleFactor(),
                model.text()::encode, MicroConditioning.uncropped(settings.resolution(), settings.resolution()).timeIds(),
                model.text().forceZerosForEmptyPrompt()), settings);
    }

    private EsdTrainer(Backend be, Parts model, Settings settings) {
        this.be = be;
        this.model = model;
        this.settings = settings;
        this.unet = new UNet2DConditionModel(model.unet());
        this.latentShape = latentShape(model.unet(), model.vaeScaleFactor(), settings.resolution());
        this.scheduler = new DdimScheduler(model.scheduler());
        scheduler.setTimesteps(settings.ddimSteps());
        this.timesteps = scheduler.timesteps();
        // the selector refuses a method that selects nothing, with the message --dry-run gives too
        this.subset = TrainableSubset.select(be, model.unetWeights(),
                TrainedNames.selector(settings.method(), model.unetWeights().asMap().keySet()));
        // the frozen UNet as the backend multiplies it (--precision bf16: bfloat16, half the memory), except the
        // trained tensors' originals: float32 as loaded, since LoRA extraction subtracts them from the trained copies
        UNetWeights.freeze(be, model.unetWeights(), name -> !subset.trained().contains(name));
        this.adam = new Adam(be, subset.trained(), Adam.Config.torchDefaults(settings.lr()));
        this.rng = new Rng(settings.seed());
        // every prompt is encoded once, here: the caller may then take the text encoder off the device
        context("");
        settings.concepts().forEach(this::context);
    }

    /** [1, in_channels, resolution / vae factor, same]; the UNet must be able to halve it at every level. */
    public static int[] latentShape(StableDiffusion model, int resolution) {
        return latentShape(model.unet(), model.vaeScaleFactor(), resolution);
    }

    /** {@link #latentShape(StableDiffusion, int)} of a UNet and VAE factor. */
    public static int[] latentShape(UNetConfig unet, int factor, int resolution) {
        int multiple = unet.spatialMultiple() * factor;
        if (resolution <= 0 || resolution % multiple != 0) {
            throw new UserError(resolution + " px is not a positive multiple of " + multiple
                    + " (the VAE factor " + factor + " × the UNet's " + unet.spatialMultiple() + " halvings)");
        }
        int side = resolution / factor;
        return new int[] {1, unet.inChannels(), side, side};
    }

    /**
     * Step 1–4: the concept, the noise level and the start noise, from the run's generator. With trajectory reuse,
     * the pool's next point, after drawing a new trajectory (concept, start noise, point order) when it is used up.
     */
    public Draw draw() {
        if (settings.reuse() == 0) {
            String concept = drawConcept();
            Schedule.Plan plan = settings.schedule().draw(rng, timesteps, trainSteps());
            return new Draw(concept, plan, rng.normal((int) Tensor.sizeOf(latentShape)), 0);
        }
        if (pool.usedUp()) {
            String concept = drawConcept();
            pool.next(concept, rng.normal((int) Tensor.sizeOf(latentShape)), rng, timesteps.length, settings.reuse());
        }
        int k = pool.take();
        TrajectoryPool.State s = pool.state();
        return new Draw(s.concept(), settings.schedule().replay(k, timesteps[k], timesteps, trainSteps()), s.start(),
                s.trajectory());
    }

    private String drawConcept() {
        List<String> concepts = settings.concepts();
        return concepts.size() == 1 ? concepts.getFirst() : concepts.get(rng.nextInt(0, concepts.size()));
    }

    /**
     * The same choices as a recorded iteration (a replay): t_ddpm, start noise and trajectory number as given
     * (trajectory 0: the iteration sampled its own z).
     */
    public Draw replayed(String concept, int tEnc, int tDdpm, float[] startCode, int trajectory) {
        if (!settings.concepts().contains(concept)) { // its prompt was never encoded (and the encoder may be gone)
            throw new UserError("the concept '" + concept + "' is not one of this run's: " + settings.concepts());
        }
        if (startCode.length != Tensor.sizeOf(latentShape)) {
            throw new UserError("start noise of " + startCode.length + " values, this run needs "
                    + Tensor.sizeOf(latentShape));
        }
        if ((trajectory > 0) != (settings.reuse() > 0)) {
            throw new ReuseMismatch(trajectory > 0
                    ? "the trace is of a run that reused trajectories; replay it with trajectory reuse"
                    : "the trace is of a run without trajectory reuse; replay it without trajectory reuse");
        }
        return new Draw(concept, settings.schedule().replay(tEnc, tDdpm, timesteps, trainSteps()), startCode, trajectory);
    }

    /**
     * Steps 5–7 for one draw: sample z (or take it and its e0/ep from the pooled trajectory), then one Adam step
     * on the ESD loss.
     */
    public Iteration step(Draw d) {
        long started = System.nanoTime();
        Evaluations.Count before = unet.evaluations().count();
        PromptEmbeds embNull = context("");
        PromptEmbeds embConcept = context(d.concept());
        float loss;
        // every tensor the iteration makes is a temporary: the next iteration reuses its memory
        try (Scope scope = be.openScope()) {
            be.labelAllocations("sampling");
            EsdLoss.Result r;
            if (d.trajectory() > 0) {
                Trajectory.Point p = trajectory(d).point(d.plan().tEnc(), be, unet, model.unetWeights(), scheduler,
                        timesteps, embNull, embConcept, model.timeIds(), settings.startGuidance(), latentShape);
                subset.zeroGradients(be);
                r = EsdLoss.withFrozenPredictions(be, unet, subset.trainable(), subset.gradients(),
                        be.fromHost(p.z(), latentShape), d.plan().tDdpm(), be.fromHost(p.e0(), latentShape),
                        be.fromHost(p.ep(), latentShape), embConcept, model.timeIds(), settings.target(),
                        settings.negativeGuidance());
            } else {
                Tensor z = sample(d);
                subset.zeroGradients(be);
                r = EsdLoss.compute(be, unet, model.unetWeights(), subset.trainable(), subset.gradients(),
                        z, d.plan().tDdpm(), embNull, embConcept, model.timeIds(), settings.target(),
                        settings.negativeGuidance());
            }
            adam.step(be, subset.trained(), subset.gradients());
            loss = r.loss();
            be.labelAllocations("other");
        }
        completed++;
        return new Iteration(completed, d, loss, (System.nanoTime() - started) / 1e9,
                unet.evaluations().count().minus(before));
    }

    /** Step 5: z sampled from the draw's start noise over its plan's timesteps, by the settings' sampler. */
    Tensor sample(Draw d) {
        Weights weights = settings.sampler() == Sampler.FROZEN ? model.unetWeights() : subset.trainable();
        PromptEmbeds cond = context(d.concept());
        return GuidedSampler.sample(be, unet, weights, scheduler, be.fromHost(d.startCode(), latentShape),
                samplingUncond(cond), cond, model.timeIds(), settings.startGuidance(), d.plan().timesteps(), null);
    }

    /** The unconditional input of z's sampling: the encoded "", or zeros as SDXL's pipeline gives without a negative prompt. */
    private PromptEmbeds samplingUncond(PromptEmbeds cond) {
        if (!model.zerosUncondInSampling()) return context("");
        return new PromptEmbeds(be.zeros(cond.embeds().shape()), be.zeros(cond.pooled().shape()));
    }

    /** The pooled trajectory a draw names: the one sampled last, or a new one (after a resume or in a replay). */
    private Trajectory trajectory(Draw d) {
        if (current == null || !current.isOf(d)) current = new Trajectory(d.trajectory(), d.concept(), d.startCode());
        return current;
    }

    private int trainSteps() { return model.scheduler().numTrainTimesteps(); }

    /** How a prompt conditions the UNet (context [1, tokens, dim]; SDXL: also pooled [1, p]), computed once per prompt. */
    private PromptEmbeds context(String prompt) {
        return contexts.computeIfAbsent(prompt, model.encoder());
    }

    /** Iterations completed so far. */
    public int completed() { return completed; }

    public Settings settings() { return settings; }

    /** The latents this run samples, [1, c, h, w]. */
    public int[] latentShape() { return latentShape.clone(); }

    public Backend backend() { return be; }

    public TrainableSubset subset() { return subset; }

    public Adam adam() { return adam; }

    public Rng rng() { return rng; }

    /** The UNet the iterations run (its {@link UNet2DConditionModel#evaluations} count what they cost). */
    public UNet2DConditionModel unet() { return unet; }

    /** With trajectory reuse, which trajectory and points come next (a checkpoint saves it). */
    public TrajectoryPool pool() { return pool; }

    /** Continues from a checkpoint's counters (its tensors are restored by {@link Checkpoint}). */
    void resumeAt(int completedIterations) { this.completed = completedIterations; }
}
