package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.cli.UserError;
import esdnative.model.StableDiffusion;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.optim.Adam;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Tensor;
import esdnative.util.Rng;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The ESD training loop of the paper code (ESD-SPEC.md, steps 1–7), one iteration at a time:
 * draw a concept, a noise level and start noise; let the <em>trainable</em> model sample z with guided DDIM from
 * that noise; take e0, ep from the frozen model and en from the trainable one at (z, t_ddpm); one Adam step on
 * mean((en − (e0 − η(ep − e0)))²) over the parameters the train method selects.
 */
public final class EsdTrainer {
    /** A run's settings; defaults are the paper's (see the train command). */
    public record Settings(List<String> concepts, TrainMethod method, int iterations, float lr, float negativeGuidance,
                           float startGuidance, int ddimSteps, Schedule schedule, int resolution, long seed) {
        public Settings {
            concepts = List.copyOf(concepts);
            if (concepts.isEmpty() || concepts.stream().anyMatch(String::isBlank)) throw new UserError("--concept: empty concept");
            if (iterations < 1) throw new UserError("--iterations: must be at least 1, got " + iterations);
            if (!(lr > 0)) throw new UserError("--lr: must be positive, got " + lr);
            if (ddimSteps < 1) throw new UserError("--ddim-steps: must be at least 1, got " + ddimSteps);
        }
    }

    /** One iteration's random choices: drawn, or replayed from a trace. */
    public record Draw(String concept, Schedule.Plan plan, float[] startCode) {}

    /** What one iteration did. */
    public record Iteration(int index, Draw draw, float loss, double seconds) {}

    private final Backend be;
    private final StableDiffusion model;
    private final Settings settings;
    private final UNet2DConditionModel unet;
    private final DdimScheduler scheduler;
    private final int[] timesteps;
    private final int[] latentShape;
    private final TrainableSubset subset;
    private final Adam adam;
    private final Rng rng;
    private final Map<String, Tensor> contexts = new HashMap<>();
    private int completed;

    public EsdTrainer(Backend be, StableDiffusion model, Settings settings) {
        this.be = be;
        this.model = model;
        this.settings = settings;
        this.unet = model.unetModel();
        this.latentShape = latentShape(model, settings.resolution());
        this.scheduler = new DdimScheduler(model.scheduler());
        scheduler.setTimesteps(settings.ddimSteps());
        this.timesteps = scheduler.timesteps();
        try {
            this.subset = TrainableSubset.select(be, model.unetWeights(),
                    TrainedNames.selector(settings.method(), model.unetWeights().asMap().keySet()));
        } catch (UserError e) {
            throw new UserError("--method " + settings.method().id() + ": selects no parameter of this UNet (its rules name "
                    + "blocks of SD's 4-level UNet)", e);
        }
        this.adam = new Adam(be, subset.parameterCount(), Adam.Config.torchDefaults(settings.lr()));
        this.rng = new Rng(settings.seed());
    }

    /** [1, in_channels, resolution / vae factor, same]; the UNet must be able to halve it at every level. */
    public static int[] latentShape(StableDiffusion model, int resolution) {
        int factor = model.vaeScaleFactor();
        int multiple = model.unet().spatialMultiple() * factor;
        if (resolution <= 0 || resolution % multiple != 0) {
            throw new UserError("--resolution: " + resolution + " px is not a positive multiple of " + multiple
                    + " (the VAE factor " + factor + " × the UNet's " + model.unet().spatialMultiple() + " halvings)");
        }
        int side = resolution / factor;
        return new int[] {1, model.unet().inChannels(), side, side};
    }

    /** Step 1–4: the concept, the noise level and the start noise, from the run's generator. */
    public Draw draw() {
        List<String> concepts = settings.concepts();
        String concept = concepts.size() == 1 ? concepts.getFirst() : concepts.get(rng.nextInt(0, concepts.size()));
        Schedule.Plan plan = settings.schedule().draw(rng, timesteps, model.scheduler().numTrainTimesteps());
        float[] start = rng.normal((int) Tensor.sizeOf(latentShape));
        return new Draw(concept, plan, start);
    }

    /** The same choices as a recorded iteration (a replay): t_ddpm and start noise as given. */
    public Draw replayed(String concept, int tEnc, int tDdpm, float[] startCode) {
        if (startCode.length != Tensor.sizeOf(latentShape)) {
            throw new UserError("--replay-dir: start noise of " + startCode.length + " values, this run needs "
                    + Tensor.sizeOf(latentShape));
        }
        return new Draw(concept, settings.schedule().replay(tEnc, tDdpm, timesteps), startCode);
    }

    /** Steps 5–7 for one draw: sample z with the trainable model, then one Adam step on the ESD loss. */
    public Iteration step(Draw d) {
        long started = System.nanoTime();
        Tensor embNull = context("");
        Tensor embConcept = context(d.concept());
        float loss;
        // every tensor the iteration makes is a temporary: the next iteration reuses its memory
        try (Scope scope = be.openScope()) {
            Tensor start = be.fromHost(d.startCode(), latentShape);
            Tensor z = GuidedSampler.sample(be, unet, subset.trainable(), scheduler, start, embNull, embConcept,
                    settings.startGuidance(), d.plan().ddimSteps(), 0f, null, null);
            subset.zeroGradients(be);
            EsdLoss.Result r = EsdLoss.compute(be, unet, model.unetWeights(), subset.trainable(), subset.gradients(),
                    z, d.plan().tDdpm(), embNull, embConcept, settings.negativeGuidance());
            adam.step(be, subset.trained().flat(), subset.gradients().flat());
            loss = r.loss();
        }
        completed++;
        return new Iteration(completed, d, loss, (System.nanoTime() - started) / 1e9);
    }

    /** The text encoder's last hidden state for a prompt, [1, tokens, dim], computed once per prompt. */
    private Tensor context(String prompt) {
        return contexts.computeIfAbsent(prompt, p -> model.textEncoder().forward(model.tokenizer().encodePadded(p), 1));
    }

    /** Iterations completed so far. */
    public int completed() { return completed; }

    public Settings settings() { return settings; }

    /** The latents this run samples, [1, c, h, w]. */
    public int[] latentShape() { return latentShape.clone(); }

    public StableDiffusion model() { return model; }

    public Backend backend() { return be; }

    public TrainableSubset subset() { return subset; }

    public Adam adam() { return adam; }

    public Rng rng() { return rng; }

    /** Continues from a checkpoint's counters (its tensors are restored by {@link Checkpoint}). */
    void resumeAt(int completedIterations) { this.completed = completedIterations; }
}
