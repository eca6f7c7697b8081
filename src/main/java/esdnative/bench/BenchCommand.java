package esdnative.bench;

import esdnative.backend.Backend;
import esdnative.backend.Batch;
import esdnative.backend.ProfilingBackend;
import esdnative.backend.Scope;
import esdnative.backend.cpu.CpuBackend;
import esdnative.backend.cpu.Parallel;
import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;
import esdnative.cli.UserError;
import esdnative.esd.EsdTrainer;
import esdnative.esd.Schedule;
import esdnative.esd.TrainMethod;
import esdnative.model.Weights;
import esdnative.model.unet.Evaluations;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.pipeline.GuidedSampler;
import esdnative.sched.DdimConfig;
import esdnative.sched.DdimScheduler;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import esdnative.util.PeakMemory;
import esdnative.util.Rng;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
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
            "esd-iteration");
    /** The ESD iteration's fixed plan: the paper schedule's middle draw, t_enc 25 of 50 (25 sampling steps). */
    private static final int ESD_DDIM_STEPS = 50;
    private static final int ESD_T_ENC = 25;
    private static final int ESD_T_DDPM = 510;
    private static final int GEMM_SIZE = 1024;
    private static final int TOKENS = 77;
    /** warm-up time without --warmup: small models' medians settle only after a few seconds of JIT compilation */
    private static final int WARMUP_SECONDS = 3;

    @Option(names = "--backend", defaultValue = "cpu", description = "Backend: cpu or cuda (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--model", description = "A diffusers folder or single .safetensors file to time.")
    Path model;

    @Option(names = "--config", description = "Random weights of a known architecture: sd14 or tiny (default: tiny).")
    String config;

    @Option(names = "--what", split = ",", description = "Comma-separated, from: gemm, conv, unet-forward, "
            + "unet-backward, text, ddim-step, esd-iteration (default: all).")
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
        try (ProfilingBackend profiling = new ProfilingBackend(openBackend())) {
            be = profiling;
            syncProbe = be.zeros(1);
            bench(items);
        }
    }

    private Backend openBackend() {
        if (backend.equals("cpu")) {
            out.printf("esd-native bench: backend cpu, %d threads, Java %s%n", Parallel.threads(), Runtime.version());
            return new CpuBackend();
        }
        CudaProbe.Result probe = CudaBackend.probe();
        if (!probe.available()) throw new UserError("--backend cuda: " + probe.description());
        CudaBackend cuda = CudaBackend.create();
        out.printf("esd-native bench: backend cuda, %s; Java %s%n", cuda.describe(), Runtime.version());
        out.println("(per-op times of an asynchronous backend are launch times unless ESD_CUDA_SYNC=1)");
        return cuda;
    }

    private void bench(Set<String> items) {
        if (items.contains("gemm")) gemm();
        if (items.stream().anyMatch(i -> !i.equals("gemm"))) {
            BenchModel m = model != null ? BenchModel.load(be, model, tokenizer)
                    : BenchModel.random(be, config, tokenizer, seed);
            int latent = latentSize(m);
            out.printf("model: %s; UNet %,d parameters (%s float32); latents %d×%d (%d px)%n", m.description(),
                    m.unetWeights().elementCount(), PeakMemory.format(4 * m.unetWeights().elementCount()), latent,
                    latent, latent * m.vaeScaleFactor());
            if (items.contains("conv")) conv(m, latent);
            if (items.contains("unet-forward")) {
                for (int n : batch != null ? List.of(batch) : List.of(1, 2)) unetForward(m, latent, n);
            }
            if (items.contains("unet-backward")) unetBackward(m, latent, batch != null ? batch : 1);
            if (items.contains("text")) text(m);
            if (items.contains("ddim-step")) ddimStep(m, latent);
            if (items.contains("esd-iteration")) esdIteration(m, latent);
            if (skipEsdIteration) out.println("esd-iteration left out: with --config it needs --tokenizer DIR");
        }
        out.printf("peak resident memory: %s (Java heap limit %s)%n", PeakMemory.describe(),
                PeakMemory.format(Runtime.getRuntime().maxMemory()));
        out.flush();
    }

    /** Validates the flags; returns the items to run, in the canonical order. */
    private Set<String> checkFlags() {
        if (!backend.equals("cpu") && !backend.equals("cuda")) {
            throw new UserError("--backend: '" + backend + "' is not a backend (cpu, cuda)");
        }
        if (model != null && config != null) throw new UserError("--model and --config: give one, not both");
        if (model == null && config == null) config = "tiny";
        if (config != null && !config.equals("sd14") && !config.equals("tiny")) {
            throw new UserError("--config: '" + config + "' is not a known configuration (sd14, tiny)");
        }
        Set<String> items = new LinkedHashSet<>();
        for (String w : what != null ? what : ITEMS) {
            String item = w.trim();
            if (!ITEMS.contains(item)) {
                throw new UserError("--what: '" + item + "' is not a benchmark (" + String.join(", ", ITEMS) + ")");
            }
            items.add(item);
        }
        Set<String> ordered = new LinkedHashSet<>(ITEMS);
        ordered.retainAll(items);
        if (what != null && ordered.contains("esd-iteration") && model == null && tokenizer == null) {
            throw new UserError("--what esd-iteration: with --config it needs --tokenizer DIR (CLIP vocab.json, merges.txt)");
        }
        skipEsdIteration = what == null && model == null && tokenizer == null;
        if (skipEsdIteration) ordered.remove("esd-iteration");
        if (batch != null && batch < 1) throw new UserError("--batch: must be at least 1, got " + batch);
        if (resolution != null && resolution < 1) throw new UserError("--resolution: must be positive, got " + resolution);
        if (warmup != null && warmup < 0) throw new UserError("--warmup: must be 0 or more, got " + warmup);
        if (repeat < 1) throw new UserError("--repeat: must be at least 1, got " + repeat);
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
        profiled("UNet forward, batch " + n, () -> unet.predict(be, m.unetWeights(), in.latents, in.timesteps, in.context));
    }

    private void unetBackward(BenchModel m, int latent, int n) {
        UNet2DConditionModel unet = m.unet();
        Inputs in = inputs(m, latent, n);
        Weights grads = Weights.allocate(be, unet.parameterShapes());
        Tensor dOut = be.fromHost(new Rng(seed + 2).normal(n * m.unetConfig().outChannels() * latent * latent),
                n, m.unetConfig().outChannels(), latent, latent);
        profiled("UNet forward+backward (all parameter gradients), batch " + n, () -> {
            be.fill(grads.flat(), 0f);
            // as a training iteration runs it: each run's activations and gradients reuse the last run's memory
            try (Scope scope = be.openScope()) {
                var acts = unet.forward(be, m.unetWeights(), in.latents, in.timesteps, in.context);
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
     * ESD-x training iterations (EsdTrainer.step) with fixed plans, so that runs compare, each with the UNet
     * evaluations it ran as the model counted them. Paper mode: the trainable model samples z over the paper
     * schedule's middle draw (t_enc 25 of 50), then the three noise predictions, the loss's backward and an Adam
     * step. {@code --fast}: the iteration that samples a trajectory (all 50 guided steps of the frozen model, a new
     * trajectory each run) and a pooled one (e0/ep from the pool), and what one iteration costs over a 50-point pool.
     */
    private void esdIteration(BenchModel m, int latent) {
        String concept = "Van Gogh";
        EsdTrainer.Settings paper = new EsdTrainer.Settings(List.of(concept), TrainMethod.XATTN, 1, 1e-5f, 1f,
                3f, ESD_DDIM_STEPS, Schedule.PAPER, latent * m.vaeScaleFactor(), seed);
        EsdTrainer trainer = new EsdTrainer(be, m.stableDiffusion(), paper);
        float[] start = new Rng(seed + 3).normal(m.unetConfig().inChannels() * latent * latent);
        EsdTrainer.Draw draw = trainer.replayed(concept, ESD_T_ENC, ESD_T_DDPM, start, 0);
        Cost paperCost = esdProfiled(String.format("ESD-x iteration (%d DDIM steps, t_ddpm %d)", draw.plan().ddimSteps(),
                ESD_T_DDPM), () -> trainer.step(draw));

        EsdTrainer fast = new EsdTrainer(be, m.stableDiffusion(), paper.fast(ESD_DDIM_STEPS));
        DdimScheduler scheduler = new DdimScheduler(m.scheduler());
        scheduler.setTimesteps(ESD_DDIM_STEPS);
        int[] timesteps = scheduler.timesteps();
        int last = ESD_DDIM_STEPS - 1;
        int[] trajectory = {0};
        Cost sampling = esdProfiled(String.format("ESD-x --fast iteration sampling its trajectory (%d DDIM steps)",
                ESD_DDIM_STEPS), () -> fast.step(fast.replayed(concept, last, timesteps[last], start, ++trajectory[0])));
        Cost pooled = esdProfiled("ESD-x --fast iteration on a pooled point", () ->
                fast.step(fast.replayed(concept, ESD_T_ENC, timesteps[ESD_T_ENC], start, trajectory[0])));
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

    /** Random latents [n, in, h, w], timesteps and a context [n, 77, crossAttentionDim]. */
    private record Inputs(Tensor latents, float[] timesteps, Tensor context) {}

    private Inputs inputs(BenchModel m, int latent, int n) {
        Rng rng = new Rng(seed + 1);
        int c = m.unetConfig().inChannels(), dim = m.unetConfig().crossAttentionDim().getFirst();
        float[] t = new float[n];
        for (int i = 0; i < n; i++) t[i] = rng.nextInt(0, 1000);
        return new Inputs(be.fromHost(rng.normal(n * c * latent * latent), n, c, latent, latent), t,
                be.fromHost(rng.normal(n * TOKENS * dim), n, TOKENS, dim));
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
