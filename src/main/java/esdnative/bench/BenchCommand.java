package esdnative.bench;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.backend.ProfilingBackend;
import esdnative.backend.Scope;
import esdnative.backend.cpu.Parallel;
import esdnative.backend.cuda.CudaBackend;
import esdnative.util.UserError;
import esdnative.model.ModelLoader;
import esdnative.options.Flags;
import esdnative.esd.EsdRun;
import esdnative.esd.EsdTrainer;
import esdnative.model.Weights;
import esdnative.model.clip.ClipVisionConfig;
import esdnative.model.clip.ClipVisionModel;
import esdnative.model.sdxl.MicroConditioning;
import esdnative.model.unet.Evaluations;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.options.BackendOptions;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimConfig;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import esdnative.text.ClipTokenizer;
import esdnative.uce.ConceptEncoder;
import esdnative.uce.UceEdit;
import esdnative.uce.UceForm;
import esdnative.uce.UceSettings;
import esdnative.util.PeakMemory;
import esdnative.util.Rng;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * {@code esd-native bench}: times the engine's building blocks and whole passes (warm-up, then repeated runs;
 * median and spread), with a per-op breakdown of the UNet passes and the process's peak resident memory.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time GEMM, conv2d, UNet forward/backward, the text encoder and a guided DDIM step.")
public final class BenchCommand implements Runnable {
    static final List<String> ITEMS = List.of("gemm", "conv", "unet-forward", "unet-backward", "text", "ddim-step",
            "esd-iteration", "clip-vision", "uce");
    /** concepts erased at once in the uce item's three timings */
    private static final List<Integer> UCE_CONCEPTS = List.of(1, 10, 100);
    /** The ESD iteration's fixed plan: the paper schedule's middle draw, t_enc 25 of 50 (25 sampling steps). */
    private static final int ESD_DDIM_STEPS = 50;
    private static final int ESD_T_ENC = 25;
    private static final int ESD_T_DDPM = 510;
    private static final int GEMM_SIZE = 1024;
    /** SDXL base's UNet with random weights, no text encoder: only the UNet's items; by default its forward */
    private static final String SDXL = "sdxl";
    private static final List<String> SDXL_ITEMS = List.of("gemm", "conv", "unet-forward", "unet-backward");
    private static final List<String> SDXL_DEFAULT = List.of("unet-forward");
    private static final int TOKENS = 77;
    /** warm-up time without --warmup: small models' medians settle only after a few seconds of JIT compilation */
    private static final int WARMUP_SECONDS = 3;

    @Mixin
    BackendOptions backend;

    @Option(names = "--model", description = "A diffusers folder or single .safetensors file to time.")
    Path model;

    @Option(names = "--config", description = "Random weights of a known architecture: sd14, sdxl (the UNet only: conv, unet-forward, unet-backward; default: unet-forward at batch 1) or tiny (default: tiny).")
    String config;

    @Option(names = "--what", split = ",", description = "Comma-separated, from: gemm, conv, unet-forward, "
            + "unet-backward, text, ddim-step, esd-iteration (default: all of these), clip-vision, uce (only on request).")
    List<String> what;

    @Option(names = "--batch", description = "UNet batch size (default: forward at 1 and 2, backward and conv at 1).")
    Integer batch;

    @Option(names = "--resolution", description = "Image size in pixels (latents: this over the VAE factor; "
            + "default: the model's).")
    Integer resolution;

    @Option(names = "--warmup", description = "Untimed runs first (default: as many as fill " + WARMUP_SECONDS
            + " s, at least 1: the JIT settles only after a few seconds of a workload).")
    Integer warmup;

    @Option(names = "--repeat", defaultValue = "5", description = "Timed runs (default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--tokenizer", description = "CLIP tokenizer folder (vocab.json, merges.txt) for esd-iteration "
            + "with --config; with --model, where to find it if the model has none.")
    Path tokenizer;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights and inputs (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--check-only", description = "With --backend cuda: one ESD-x iteration on the project's fake"
            + " CUDA driver in count-only mode (target/fake-cuda, built where g++ exists): every launch, GEMM, copy and"
            + " allocation is checked as a GPU would (launch limits, cuBLAS arguments, memory) and counted, nothing is"
            + " computed; prints the counts and the peak device memory. SD 1.4 shapes: --config sd14 (no tokenizer needed).")
    boolean checkOnly;

    @Spec
    CommandSpec spec;

    private PrintWriter out;
    private ProfilingBackend be;
    /** esd-iteration left out of the default list: random weights and no --tokenizer */
    private boolean skipEsdIteration;
    /** one element read back after every timed run: waits for an asynchronous backend to finish */
    private Tensor syncProbe;

    @Override
    public void run() {
        Set<String> items = checkFlags();
        out = spec.commandLine().getOut();
        if (checkOnly) {
            checkOnly();
            return;
        }
        try (ProfilingBackend profiling = new ProfilingBackend(openBackend())) {
            be = profiling;
            syncProbe = be.zeros(1);
            bench(items);
        }
    }

    private Backend openBackend() {
        Backend opened = backend.open(out::println);
        if (!(opened instanceof CudaBackend cuda)) {
            out.printf("esd-native bench: backend cpu, %d threads, Java %s%n", Parallel.threads(), Runtime.version());
            return opened;
        }
        out.printf("esd-native bench: backend cuda, %s; Java %s%n", cuda.describe(), Runtime.version());
        out.println("(per-op times of an asynchronous backend are launch times unless ESD_CUDA_SYNC=1)");
        return cuda;
    }

    private void bench(Set<String> items) {
        if (items.contains("gemm")) gemm();
        if (items.contains("clip-vision")) clipVision();
        if (items.stream().anyMatch(i -> !i.equals("gemm") && !i.equals("clip-vision"))) {
            BenchModel m = model != null ? BenchModel.load(be, model, tokenizer)
                    : BenchModel.random(be, config, tokenizer, seed);
            int latent = latentSize(m);
            out.printf("model: %s; UNet %,d parameters (%s float32); latents %d×%d (%d px)%n", m.description(),
                    m.unetWeights().elementCount(), PeakMemory.format(4 * m.unetWeights().elementCount()), latent,
                    latent, latent * m.vaeScaleFactor());
            if (items.contains("conv")) conv(m, latent);
            if (items.contains("unet-forward")) {
                for (int n : batch != null ? List.of(batch) : SDXL.equals(config) ? List.of(1) : List.of(1, 2)) {
                    unetForward(m, latent, n);
                }
            }
            if (items.contains("unet-backward")) unetBackward(m, latent, batch != null ? batch : 1);
            if (items.contains("text")) text(m);
            if (items.contains("ddim-step")) ddimStep(m, latent);
            if (items.contains("esd-iteration")) esdIteration(m, latent);
            if (items.contains("uce")) uce(m);
            if (skipEsdIteration) out.println("esd-iteration left out: with --config it needs --tokenizer DIR");
        }
        out.printf("peak resident memory: %s (Java heap limit %s)%n", PeakMemory.describe(),
                PeakMemory.format(Runtime.getRuntime().maxMemory()));
        out.flush();
    }

    /** Validates the flags; returns the items to run, in the canonical order. */
    private Set<String> checkFlags() {
        backend.check();
        if (model != null && config != null) throw new UserError("--model and --config: give one, not both");
        if (model == null && config == null) config = "tiny";
        if (config != null && !config.equals("sd14") && !config.equals(SDXL) && !config.equals("tiny")) {
            throw new UserError("--config: '" + config + "' is not a known configuration (sd14, sdxl, tiny)");
        }
        Set<String> items = new LinkedHashSet<>();
        for (String w : what != null ? what : SDXL.equals(config) ? SDXL_DEFAULT : ITEMS) {
            String item = w.trim();
            if (!ITEMS.contains(item)) {
                throw new UserError("--what: '" + item + "' is not a benchmark (" + String.join(", ", ITEMS) + ")");
            }
            if (SDXL.equals(config) && !SDXL_ITEMS.contains(item)) {
                throw new UserError("--what " + item + ": --config sdxl times the UNet only (" + String.join(", ", SDXL_ITEMS) + ")");
            }
            items.add(item);
        }
        Set<String> ordered = new LinkedHashSet<>(ITEMS);
        ordered.retainAll(items);
        if (what != null && ordered.contains("esd-iteration") && model == null && tokenizer == null && !checkOnly) {
            throw new UserError("--what esd-iteration: with --config it needs --tokenizer DIR (CLIP vocab.json, merges.txt)");
        }
        if (what != null && ordered.contains("uce") && model == null && tokenizer == null) {
            throw new UserError("--what uce: with --config it needs --tokenizer DIR (CLIP vocab.json, merges.txt)");
        }
        if (what == null) ordered.remove("clip-vision");   // 1.2 GB of random weights: only on request
        if (what == null) ordered.remove("uce");   // only on request: it times edits of 1, 10 and 100 concepts
        skipEsdIteration = what == null && model == null && tokenizer == null && !SDXL.equals(config);
        if (skipEsdIteration) ordered.remove("esd-iteration");
        if (batch != null && batch < 1) throw new UserError("--batch: must be at least 1, got " + batch);
        if (model != null && !Files.exists(model)) throw new UserError("--model: " + model + " does not exist");
        if (tokenizer != null) Flags.about("--tokenizer", () -> ModelLoader.findTokenizer(tokenizer, null));
        if (resolution != null && resolution < 1) throw new UserError("--resolution: must be positive, got " + resolution);
        if (warmup != null && warmup < 0) throw new UserError("--warmup: must be 0 or more, got " + warmup);
        if (repeat < 1) throw new UserError("--repeat: must be at least 1, got " + repeat);
        if (checkOnly && backend.kind() != BackendOptions.Kind.CUDA) throw new UserError("--check-only: checks the cuda backend (--backend cuda)");
        return ordered;
    }

    /** Latent height and width for --resolution: a multiple of the VAE factor times the UNet's spatial multiple. */
    private int latentSize(BenchModel m) {
        int px = resolution != null ? resolution : m.defaultResolution();
        int multiple = m.vaeScaleFactor() * m.unetConfig().spatialMultiple();
        if (px % multiple != 0) {
            throw new UserError("--resolution: " + px + " px is not a multiple of " + multiple + " for this model");
        }
        return px / m.vaeScaleFactor();
    }

    private void gemm() {
        int s = GEMM_SIZE;
        Rng rng = new Rng(seed);
        Tensor a = be.fromHost(rng.normal(s * s), s, s), b = be.fromHost(rng.normal(s * s), s, s);
        Tensor c = be.zeros(s, s);
        for (boolean[] t : new boolean[][] {{false, false}, {false, true}, {true, false}}) {
            Measurement r = measure(() -> be.gemm(t[0], t[1], s, s, s, 1f, a, s, 0, b, s, 0, 0f, c, s, 0, 1));
            line(String.format("gemm %d³ %s%s", s, t[0] ? "T" : "N", t[1] ? "T" : "N"), r,
                    String.format("%.1f GFLOP/s", r.gflops(2.0 * s * s * s)));
        }
    }

    /** The UNet's most common convolutions at this resolution: 3×3 and 1×1 over the first level's channels. */
    private void conv(BenchModel m, int latent) {
        int n = batch != null ? batch : 1;
        int ch = m.unetConfig().blockOutChannels().getFirst();
        for (Conv2dShape sh : List.of(new Conv2dShape(n, ch, latent, latent, ch, 3, 3, 1, 1),
                new Conv2dShape(n, ch, latent, latent, ch, 1, 1, 1, 0),
                new Conv2dShape(n, ch, latent, latent, ch, 3, 3, 2, 1))) {
            Rng rng = new Rng(seed);
            Tensor x = be.fromHost(rng.normal(n * ch * latent * latent), n, ch, latent, latent);
            Tensor w = be.fromHost(rng.normal(ch * ch * sh.r() * sh.s()), ch, ch, sh.r(), sh.s());
            Tensor bias = be.zeros(ch);
            Tensor y = be.zeros(n, ch, sh.outH(), sh.outW());
            Tensor dx = be.zeros(x.shape()), dw = be.zeros(w.shape());
            String name = String.format("conv %d→%d %dx%d/%d at %d×%d, batch %d", ch, ch, sh.r(), sh.s(), sh.stride(),
                    latent, latent, n);
            Measurement f = measure(() -> be.conv2d(y, x, w, bias, sh));
            line(name + " forward", f, String.format("%.1f GFLOP/s", f.gflops(sh.flops())));
            Measurement bd = measure(() -> be.conv2dBackwardData(dx, y, w, sh));
            line(name + " backward data", bd, String.format("%.1f GFLOP/s", bd.gflops(sh.flops())));
            Measurement bw = measure(() -> be.conv2dBackwardWeight(dw, null, y, x, sh));
            line(name + " backward weight", bw, String.format("%.1f GFLOP/s", bw.gflops(sh.flops())));
        }
    }

    private void unetForward(BenchModel m, int latent, int n) {
        UNet2DConditionModel unet = m.unet();
        Inputs in = inputs(m, latent, n);
        // predict: the forward as inference runs it, without keeping activations for a backward
        profiled("UNet forward, batch " + n, () -> unet.predict(be, m.unetWeights(), in.latents, in.timesteps, in.context,
                in.added));
    }

    private void unetBackward(BenchModel m, int latent, int n) {
        UNet2DConditionModel unet = m.unet();
        Inputs in = inputs(m, latent, n);
        Weights grads = Weights.allocate(be, unet.parameterShapes());
        Tensor dOut = be.fromHost(new Rng(seed + 2).normal(n * m.unetConfig().outChannels() * latent * latent),
                n, m.unetConfig().outChannels(), latent, latent);
        profiled("UNet forward+backward (all parameter gradients), batch " + n, () -> {
            grads.fill(be, 0f);
            // as a training iteration runs it: each run's activations and gradients reuse the last run's memory
            try (Scope scope = be.openScope()) {
                var acts = unet.forward(be, m.unetWeights(), in.latents, in.timesteps, in.context, in.added);
                unet.backward(be, m.unetWeights(), grads, acts, dOut, null, null);
            }
        });
    }

    private void text(BenchModel m) {
        int vocab = m.textEncoder().config().vocabSize();
        Rng rng = new Rng(seed);
        int[] ids = new int[TOKENS];
        for (int i = 0; i < TOKENS; i++) ids[i] = rng.nextInt(0, vocab);
        Measurement r = measure(() -> m.textEncoder().forward(ids, 1));
        line("text encoder forward, 1×" + TOKENS + " tokens", r, "");
    }

    /** CLIP ViT-L/14's image tower, as eval's CLIP score and SD's safety checker run it: random weights, one image. */
    private void clipVision() {
        ClipVisionConfig c = ClipVisionConfig.vitL14();
        Weights weights = Weights.allocate(be, ClipVisionModel.parameterShapes(c));
        RandomWeights.fill(be, weights, seed);
        ClipVisionModel vision = new ClipVisionModel(be, c, weights);
        Tensor pixels = be.fromHost(new Rng(seed).normal(3 * c.imageSize() * c.imageSize()), 1, 3, c.imageSize(), c.imageSize());
        Measurement r = measure(() -> vision.forward(pixels));
        // multiply-adds ×2: per layer the q/k/v/out and MLP linears over every token, then q·kᵀ and probs·v; the patch conv
        double t = c.tokens(), h = c.hiddenSize(), p = c.patchSize();
        double flops = c.numHiddenLayers() * (2 * t * (4 * h * h + 2 * h * c.intermediateSize()) + 4 * t * t * h)
                + 2 * (t - 1) * h * c.numChannels() * p * p;
        line(String.format("CLIP ViT-L/14 vision forward, 1 image %d²", c.imageSize()), r,
                String.format("%.1f GFLOP/s; %,d parameters", r.gflops(flops), weights.elementCount()));
    }

    /** One step as sampling runs it: a batch-2 forward on [x, x] with [uncond, cond], guidance, a DDIM update. */
    private void ddimStep(BenchModel m, int latent) {
        UNet2DConditionModel unet = m.unet();
        Inputs in = inputs(m, latent, 2);
        DdimScheduler scheduler = new DdimScheduler(DdimConfig.stableDiffusion1());
        scheduler.setTimesteps(50);
        Tensor x = in.latents.slice(0).reshape(1, m.unetConfig().inChannels(), latent, latent);
        Tensor uncond = in.context.slice(0).reshape(1, in.context.dim(1), in.context.dim(2));
        Tensor cond = in.context.slice(1).reshape(1, in.context.dim(1), in.context.dim(2));
        Measurement r = measure(() -> GuidedSampler.sample(be, unet, m.unetWeights(), scheduler, x, uncond, cond, 7.5f, 1, 0f, null, null));
        line("guided DDIM step (batch-2 forward + step)", r, "");
    }

    /**
     * ESD-x training iterations (EsdRun.step) with fixed plans, so that runs compare, each with the UNet
     * evaluations it ran as the model counted them. Paper mode: the trainable model samples z over the paper
     * schedule's middle draw (t_enc 25 of 50), then the three noise predictions, the loss's backward and an Adam
     * step. {@code --fast}: the iteration that samples a trajectory (all 50 guided steps of the frozen model, a new
     * trajectory each run) and a pooled one (e0/ep from the pool), and what one iteration costs over a 50-point pool.
     */
    private void esdIteration(BenchModel m, int latent) {
        EsdTrainer trainer = esdTrainer(m, latent);
        EsdTrainer.Draw draw = esdDraw(trainer, m, latent);
        String concept = draw.concept();
        float[] start = draw.startCode();
        EsdRun paper = new EsdRun(trainer);
        Cost paperCost = esdProfiled(String.format("ESD-x iteration (%d DDIM steps, t_ddpm %d)", draw.plan().ddimSteps(),
                ESD_T_DDPM), () -> paper.step(draw));

        EsdTrainer fast = new EsdTrainer(be, m.stableDiffusion(), trainer.settings().fast(ESD_DDIM_STEPS));
        EsdRun fastRun = new EsdRun(fast);
        DdimScheduler scheduler = new DdimScheduler(m.scheduler());
        scheduler.setTimesteps(ESD_DDIM_STEPS);
        int[] timesteps = scheduler.timesteps();
        int last = ESD_DDIM_STEPS - 1;
        int[] trajectory = {0};
        Cost sampling = esdProfiled(String.format("ESD-x --fast iteration sampling its trajectory (%d DDIM steps)",
                ESD_DDIM_STEPS), () -> fastRun.step(fast.replayed(concept, last, timesteps[last], start, ++trajectory[0])));
        Cost pooled = esdProfiled("ESD-x --fast iteration on a pooled point", () ->
                fastRun.step(fast.replayed(concept, ESD_T_ENC, timesteps[ESD_T_ENC], start, trajectory[0])));
        // one pool: the iteration that samples, then ESD_DDIM_STEPS - 1 pooled ones
        double millis = (sampling.millis() + (ESD_DDIM_STEPS - 1) * pooled.millis()) / ESD_DDIM_STEPS;
        double forwards = (sampling.count().forwards() + (ESD_DDIM_STEPS - 1) * pooled.count().forwards()) / (double) ESD_DDIM_STEPS;
        double backwards = (sampling.count().backwards() + (ESD_DDIM_STEPS - 1) * pooled.count().backwards()) / (double) ESD_DDIM_STEPS;
        double equivalents = forwards + 2 * backwards;
        out.printf("ESD-x --fast per iteration over a %d-point pool: %s, UNet %.2f forwards + %.2f backwards = %.2f "
                        + "forward-equivalents%n    paper mode / --fast: %.1f× the forward-equivalents, %.1f× the time%n",
                ESD_DDIM_STEPS, Measurement.ms(millis), forwards, backwards, equivalents,
                paperCost.count().forwardEquivalents() / equivalents, paperCost.millis() / millis);
        out.flush();
    }

    /** An ESD iteration's median time and the UNet evaluations of its last run. */
    private record Cost(double millis, Evaluations.Count count) {}

    private Cost esdProfiled(String name, Supplier<EsdTrainer.Iteration> iteration) {
        EsdTrainer.Iteration[] last = new EsdTrainer.Iteration[1];
        Measurement r = profiled(name, () -> last[0] = iteration.get());
        Evaluations.Count c = last[0].evaluations();
        out.printf("    UNet evaluations: %d forwards, %d backwards (%d forward-equivalents, a backward counted as 2)%n",
                c.forwards(), c.backwards(), c.forwardEquivalents());
        out.flush();
        return new Cost(r.median(), c);
    }

    /**
     * UCE's whole edit as {@code esd-native uce} runs it between loading and writing: the text encoder on every
     * concept and "", then the closed form applied to every attn2 to_k/to_v, for 1, 10 and 100 concepts erased.
     */
    private void uce(BenchModel m) {
        ConceptEncoder encoder = new ConceptEncoder(be, m.tokenizer(), m.textEncoder());
        for (int n : UCE_CONCEPTS) {
            List<String> concepts = java.util.stream.IntStream.range(0, n).mapToObj(i -> "concept number " + i).toList();
            UceSettings s = new UceSettings(UceForm.F2025, concepts, List.of(""), List.of(), 1, null, UceSettings.DEFAULT_LAMB);
            UceEdit.Result[] last = new UceEdit.Result[1];
            long[] cpuNanos = new long[1];   // the process's CPU time in the last run: less load-dependent than wall time
            Measurement r = measure(() -> {
                long cpu = processCpuNanos();
                last[0] = UceEdit.apply(be, encoder, m.unetWeights(), s);
                cpuNanos[0] = processCpuNanos() - cpu;
            });
            line(String.format("UCE edit, %d concept%s erased", n, n == 1 ? "" : "s"), r,
                    String.format("last run: text encoder %.2f s, closed form %.2f s (%d tensors), CPU %.2f s",
                            last[0].textSeconds(), last[0].solveSeconds(), last[0].edited().trained().asMap().size(),
                            cpuNanos[0] / 1e9));
        }
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private EsdTrainer esdTrainer(BenchModel m, int latent) {
        EsdTrainer.Settings settings = EsdTrainer.Settings.paper(List.of("Van Gogh")).withIterations(1)
                .withDdimSteps(ESD_DDIM_STEPS).withResolution(latent * m.vaeScaleFactor()).withSeed(seed);
        return new EsdTrainer(be, m.stableDiffusion(), settings);
    }

    private EsdTrainer.Draw esdDraw(EsdTrainer trainer, BenchModel m, int latent) {
        float[] start = new Rng(seed + 3).normal(m.unetConfig().inChannels() * latent * latent);
        return trainer.replayed("Van Gogh", ESD_T_ENC, ESD_T_DDPM, start, 0);
    }

    /**
     * --check-only: one ESD-x iteration (as esd-iteration times it) on the fake driver in count-only mode, then its
     * counts. A refused call fails the backend at once (CudaException naming the op); the counts must show none.
     */
    private void checkOnly() {
        CheckOnly fake = CheckOnly.load();
        CudaBackend cuda = fake.open(backend.mathMode());
        try (ProfilingBackend profiling = new ProfilingBackend(cuda)) { // closes the backend too
            be = profiling;
            out.printf("esd-native bench --check-only: %s; fake libraries in %s%n", cuda.describe(), fake.folder());
            // without --tokenizer, CLIP's special tokens stand in: the prompt's ids change no count
            BenchModel m = model != null ? BenchModel.load(be, model, tokenizer) : tokenizer != null
                    ? BenchModel.random(be, config, tokenizer, seed)
                    : BenchModel.randomWithTokenizer(be, config, ClipTokenizer.specialTokensOnly(), seed);
            int latent = latentSize(m);
            out.printf("model: %s; UNet %,d parameters; latents %d×%d%n", m.description(),
                    m.unetWeights().elementCount(), latent, latent);
            EsdTrainer trainer = esdTrainer(m, latent);
            EsdTrainer.Draw draw = esdDraw(trainer, m, latent);
            EsdRun run = new EsdRun(trainer);
            run.step(draw); // warms the JIT: host-ms is the second iteration's
            cuda.synchronize();
            out.printf("  before the counted iteration: %s%n", cuda.memoryReport());
            Map<String, Long> before = fake.counters();
            long attentionBefore = cuda.attentionBytes();
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            long cpuStart = threads.getCurrentThreadCpuTime();
            long start = System.nanoTime();
            run.step(draw);
            Map<String, Long> after = fake.counters(); // the iteration's own calls: the fake runs each as it comes
            cuda.synchronize();
            long hostNanos = System.nanoTime() - start;
            long hostCpuNanos = threads.getCurrentThreadCpuTime() - cpuStart;
            long attentionBytes = cuda.attentionBytes() - attentionBefore;
            out.printf("one ESD-x iteration (%d DDIM steps, t_ddpm %d), counted in %.1f s:%n", draw.plan().ddimSteps(),
                    ESD_T_DDPM, hostNanos / 1e9);
            out.printf("  launches %,d; gemms %,d (%.1f TFLOP); memsets %,d; syncs %,d; copies to device %,d, to host %,d,"
                    + " on device %,d; cuMemAlloc %,d%n", delta(after, before, "launches"), delta(after, before, "gemms"),
                    2e-12 * delta(after, before, "gemm_multiply_adds"), delta(after, before, "memsets"),
                    delta(after, before, "syncs"), delta(after, before, "copies_to_device"),
                    delta(after, before, "copies_to_host"), delta(after, before, "copies_on_device"),
                    delta(after, before, "allocations"));
            out.printf("  peak device memory %,d bytes (%s) from cuMemAlloc; allocator: %s%n", after.get("peak_bytes"),
                    PeakMemory.format(after.get("peak_bytes")), cuda.memoryReport());
            // the fake's checks are not the backend's cost (a GPU's driver and cuBLAS take their own instead); the
            // thread's CPU time varies less than the wall time on a busy machine
            long driverNanos = delta(after, before, "driver_nanos");
            out.printf("  host time %.1f ms (this thread's CPU time %.1f ms): %.1f ms inside the fake driver's and"
                    + " cuBLAS's calls, %.1f ms the rest (model, backend, JCuda and FFM calls)%n", hostNanos / 1e6,
                    hostCpuNanos / 1e6, driverNanos / 1e6, (hostNanos - driverNanos) / 1e6);
            long refused = after.get("rejected") + after.get("unimplemented");
            out.printf("  refused calls %d%n", refused);
            // host-ms: the iteration's wall time here, where no kernel computes: the host's dispatch cost plus the
            // fake driver's checks (an upper bound of the dispatch time on a GPU, on this machine's CPU)
            out.printf("check-only esd-iteration: launches %d, gemms %d, memsets %d, syncs %d, attention-bytes %d,"
                    + " host-ms %d, peak-device-bytes %d%n", delta(after, before, "launches"),
                    delta(after, before, "gemms"), delta(after, before, "memsets"), delta(after, before, "syncs"),
                    attentionBytes, Math.round(hostNanos / 1e6), after.get("peak_bytes"));
            out.flush();
            if (refused > 0) throw new IllegalStateException("--check-only: " + refused + " driver or cuBLAS calls were refused");
        }
    }

    private static long delta(Map<String, Long> after, Map<String, Long> before, String counter) {
        return after.get(counter) - before.get(counter);
    }

    /** Random latents [n, in, h, w], timesteps and a context [n, 77, crossAttentionDim]. */
    /** @param added SDXL's pooled embeddings and time ids (an uncropped image of the latents' size), else null */
    private record Inputs(Tensor latents, float[] timesteps, Tensor context, UNet2DConditionModel.TextTimeInputs added) {}

    private Inputs inputs(BenchModel m, int latent, int n) {
        Rng rng = new Rng(seed + 1);
        int c = m.unetConfig().inChannels(), dim = m.unetConfig().crossAttentionDim().getFirst();
        float[] t = new float[n];
        for (int i = 0; i < n; i++) t[i] = rng.nextInt(0, 1000);
        Tensor latents = be.fromHost(rng.normal(n * c * latent * latent), n, c, latent, latent);
        Tensor context = be.fromHost(rng.normal(n * TOKENS * dim), n, TOKENS, dim);
        UNetConfig.TextTime textTime = m.unetConfig().textTime();
        if (textTime == null) return new Inputs(latents, t, context, null);
        int px = latent * m.vaeScaleFactor();
        float[] ids = new float[n * UNetConfig.TextTime.TIME_IDS];
        for (int i = 0; i < n; i++) {
            System.arraycopy(MicroConditioning.uncropped(px, px).timeIds(), 0, ids, i * UNetConfig.TextTime.TIME_IDS,
                    UNetConfig.TextTime.TIME_IDS);
        }
        Tensor pooled = be.fromHost(rng.normal(n * textTime.textEmbedDim()), n, textTime.textEmbedDim());
        return new Inputs(latents, t, context, new UNet2DConditionModel.TextTimeInputs(pooled, ids));
    }

    /** Times {@code work}, then prints where the timed runs spent their time, per op and per run. */
    private Measurement profiled(String name, Runnable work) {
        warmUp(work);
        be.reset();
        Measurement r = timed(work);
        List<ProfilingBackend.OpStats> ops = be.stats();
        double flops = 0;
        for (ProfilingBackend.OpStats s : ops) flops += s.flops();
        line(name, r, String.format("%.1f GFLOP/s (%.1f GFLOP per run)", r.gflops(flops / repeat),
                flops / repeat / 1e9));
        double wallNanos = Arrays.stream(r.millis()).sum() * 1e6;
        printBreakdown(ops, be.totalNanos(), wallNanos);
        return r;
    }

    private void printBreakdown(List<ProfilingBackend.OpStats> ops, long totalNanos, double wallNanos) {
        out.printf("    %-34s %9s %12s %7s %10s%n", "op", "calls/run", "ms/run", "share", "GFLOP/s");
        List<String> rows = new ArrayList<>();
        for (ProfilingBackend.OpStats s : ops) {
            double share = totalNanos > 0 ? 100.0 * s.nanos() / totalNanos : 0;
            if (share < 0.1) continue;
            rows.add(String.format("    %-34s %9.1f %12.2f %6.1f%% %10s", s.op(), s.calls() / (double) repeat,
                    s.millis() / repeat, share, Double.isNaN(s.gflops()) ? "" : String.format("%.1f", s.gflops())));
        }
        rows.forEach(out::println);
        out.printf("    (ops under 0.1%% left out; ops account for %.0f%% of the wall time)%n", 100 * totalNanos / wallNanos);
        out.flush();
    }

    /** Warms {@code work} up, then times {@link #repeat} runs of it. */
    private Measurement measure(Runnable work) {
        warmUp(work);
        return timed(work);
    }

    /** --warmup runs of {@code work}, or as many as fill {@link #WARMUP_SECONDS} (at least one). */
    private void warmUp(Runnable work) {
        long deadline = System.nanoTime() + WARMUP_SECONDS * 1_000_000_000L;
        int runs = 0;
        while (warmup != null ? runs < warmup : runs == 0 || System.nanoTime() < deadline) {
            work.run();
            be.toHost(syncProbe);
            runs++;
        }
    }

    /** Times {@link #repeat} runs of {@code work}, each until the backend has finished it. */
    private Measurement timed(Runnable work) {
        return Measurement.of(repeat, () -> {
            work.run();
            be.toHost(syncProbe);
        });
    }

    private void line(String name, Measurement r, String extra) {
        out.printf("%-58s %s  %s%n", name, r.summary(), extra);
        out.flush();
    }
}
