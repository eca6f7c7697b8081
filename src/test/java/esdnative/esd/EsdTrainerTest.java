package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.sdxl.PromptEmbeds;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The training loop on tiny-sd-a: resuming and replaying reproduce a run bit for bit (CPU is deterministic). */
class EsdTrainerTest {
    private static final int DDIM_STEPS = 4; // keeps each iteration cheap; the loop is the same as with 50

    private static EsdTrainer trainer(Backend be, StableDiffusion sd, Schedule schedule) {
        return new EsdTrainer(be, sd, settings(sd, schedule, 11));
    }

    private static EsdTrainer.Settings settings(StableDiffusion sd, Schedule schedule, long seed) {
        return EsdTrainer.Settings.paper(List.of("a photo of a cat", "Van Gogh")).withIterations(4).withLr(1e-3f)
                .withDdimSteps(DDIM_STEPS).withSchedule(schedule).withResolution(sd.defaultResolution()).withSeed(seed);
    }

    /** --fast with 3 of each trajectory's 4 points: 7 iterations span three trajectories. */
    private static EsdTrainer fastTrainer(Backend be, StableDiffusion sd, long seed) {
        return new EsdTrainer(be, sd, settings(sd, Schedule.PAPER, seed).fast(3));
    }

    @Test
    void resumingFromACheckpointEqualsAnUninterruptedRun(@TempDir Path tmp) {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);

        EsdTrainer straight = trainer(be, sd, Schedule.PAPER);
        List<Float> losses = new ArrayList<>();
        for (int i = 0; i < 4; i++) losses.add(straight.step(straight.draw()).loss());

        EsdTrainer first = trainer(be, sd, Schedule.PAPER);
        for (int i = 0; i < 2; i++) first.step(first.draw());
        Path ckpt = tmp.resolve("run.checkpoint.safetensors");
        Checkpoint.save(ckpt, first);

        EsdTrainer resumed = trainer(be, sd, Schedule.PAPER);
        assertEquals(2, Checkpoint.restore(ckpt, resumed));
        List<Float> resumedLosses = new ArrayList<>();
        for (int i = 0; i < 2; i++) resumedLosses.add(resumed.step(resumed.draw()).loss());

        assertEquals(losses.subList(2, 4), resumedLosses);
        assertArrayEquals(be.toHost(straight.subset().trained().flat()), be.toHost(resumed.subset().trained().flat()));
        assertArrayEquals(be.toHost(straight.adam().secondMoment()), be.toHost(resumed.adam().secondMoment()));
        assertArrayEquals(straight.rng().state(), resumed.rng().state());
        // and training did move the weights away from the model's
        assertFalse(java.util.Arrays.equals(be.toHost(straight.subset().trained().flat()),
                be.toHost(trainer(be, sd, Schedule.PAPER).subset().trained().flat())));
    }

    @Test
    void aCheckpointOfAnotherMethodIsRefused(@TempDir Path tmp) {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        EsdTrainer xattn = trainer(be, sd, Schedule.PAPER);
        Path ckpt = tmp.resolve("x.safetensors");
        Checkpoint.save(ckpt, xattn);
        EsdTrainer selfattn = new EsdTrainer(be, sd, settings(sd, Schedule.PAPER, 11).withMethod(TrainMethod.SELFATTN));
        var e = assertThrows(esdnative.util.UserError.class, () -> Checkpoint.restore(ckpt, selfattn));
        assertTrue(e.getMessage().contains("method"), e.getMessage());
    }

    @Test
    void replayingATraceReproducesLossesAndWeights(@TempDir Path tmp) {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        int[] latent = EsdTrainer.latentShape(sd, sd.defaultResolution());
        for (Schedule schedule : Schedule.values()) {
            Path dir = tmp.resolve(schedule.id());
            dir.toFile().mkdirs();
            EsdTrainer recorded = trainer(be, sd, schedule);
            List<Float> losses = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                EsdTrainer.Iteration it = recorded.step(recorded.draw());
                Trace.write(dir, it, latent);
                losses.add(it.loss());
            }
            // a replay draws nothing: a different seed must not matter
            EsdTrainer replay = new EsdTrainer(be, sd, settings(sd, schedule, 999));
            for (int i = 1; i <= 5; i++) assertEquals(losses.get(i - 1), replay.step(Trace.read(dir, i, replay)).loss());
            assertArrayEquals(be.toHost(recorded.subset().trained().flat()), be.toHost(replay.subset().trained().flat()));
            var e = assertThrows(esdnative.util.UserError.class, () -> Trace.read(dir, 6, replay));
            assertTrue(e.getMessage().contains("iteration 6"), e.getMessage());
        }
    }

    @Test
    void aFastRunResumedFromACheckpointEqualsAnUninterruptedOne(@TempDir Path tmp) {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        EsdTrainer straight = fastTrainer(be, sd, 11);
        List<Float> losses = new ArrayList<>();
        for (int i = 0; i < 7; i++) losses.add(straight.step(straight.draw()).loss());

        // interrupted in the middle of the second trajectory: the resumed run rebuilds its points from the pool state
        EsdTrainer first = fastTrainer(be, sd, 11);
        for (int i = 0; i < 4; i++) first.step(first.draw());
        Path ckpt = tmp.resolve("fast.checkpoint.safetensors");
        Checkpoint.save(ckpt, first);
        EsdTrainer resumed = fastTrainer(be, sd, 11);
        assertEquals(4, Checkpoint.restore(ckpt, resumed));
        List<Float> resumedLosses = new ArrayList<>();
        for (int i = 0; i < 3; i++) resumedLosses.add(resumed.step(resumed.draw()).loss());

        assertEquals(losses.subList(4, 7), resumedLosses);
        assertArrayEquals(be.toHost(straight.subset().trained().flat()), be.toHost(resumed.subset().trained().flat()));
        assertArrayEquals(be.toHost(straight.adam().secondMoment()), be.toHost(resumed.adam().secondMoment()));
        assertArrayEquals(straight.rng().state(), resumed.rng().state());
        assertEquals(3, straight.pool().state().trajectory());
        // a paper-mode run cannot take a --fast checkpoint
        var e = assertThrows(esdnative.util.UserError.class, () -> Checkpoint.restore(ckpt, trainer(be, sd, Schedule.PAPER)));
        assertTrue(e.getMessage().contains("trajectory reuse"), e.getMessage());
    }

    @Test
    void replayingAFastTraceReproducesLossesAndWeights(@TempDir Path tmp) {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        int[] latent = EsdTrainer.latentShape(sd, sd.defaultResolution());
        EsdTrainer recorded = fastTrainer(be, sd, 11);
        List<Float> losses = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            EsdTrainer.Iteration it = recorded.step(recorded.draw());
            Trace.write(tmp, it, latent);
            losses.add(it.loss());
        }
        EsdTrainer replay = fastTrainer(be, sd, 999); // draws nothing: the seed must not matter
        for (int i = 1; i <= 7; i++) assertEquals(losses.get(i - 1), replay.step(Trace.read(tmp, i, replay)).loss());
        assertArrayEquals(be.toHost(recorded.subset().trained().flat()), be.toHost(replay.subset().trained().flat()));
        // and a paper-mode run refuses the trace, in the core's words (train names --replay-dir: TrainCommandTest)
        var e = assertThrows(esdnative.util.UserError.class, () -> Trace.read(tmp, 1, trainer(be, sd, Schedule.PAPER)));
        assertTrue(e.getMessage().contains("the trace is of a run that reused trajectories"), e.getMessage());
        assertFalse(e.getMessage().contains("--"), e.getMessage());
    }

    @Test
    void pooledPredictionsEqualAFreshFrozenForward() {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        EsdTrainer fast = fastTrainer(be, sd, 11);
        // the same draws without the pool: the frozen model samples z for each, then e0/ep from a frozen forward
        EsdTrainer unpooled = new EsdTrainer(be, sd, settings(sd, Schedule.ALIGNED, 11).withSampler(Sampler.FROZEN));
        int[] shape = fast.latentShape();
        var unet = sd.unetModel();
        for (int i = 0; i < 3; i++) {
            EsdTrainer.Draw d = fast.draw();
            Trajectory.Point p = new Trajectory(d.trajectory(), d.concept(), d.startCode()).point(d.plan().tEnc(), be,
                    unet, sd.unetWeights(), scheduler(sd), timesteps(sd), new PromptEmbeds(context(sd, ""), null),
                    new PromptEmbeds(context(sd, d.concept()), null), null, 3f, shape);
            EsdTrainer.Draw own = unpooled.replayed(d.concept(), d.plan().tEnc(), d.plan().tDdpm(), d.startCode(), 0);
            assertArrayEquals(be.toHost(unpooled.sample(own)), p.z(), "z of point " + d.plan().tEnc());
            int t = d.plan().tDdpm();
            var z = be.fromHost(p.z(), shape);
            float[] fresh = be.toHost(unet.predict(be, sd.unetWeights(), esdnative.backend.Batch.stack(be, z, z),
                    new float[] {t, t}, esdnative.backend.Batch.stack(be, context(sd, ""), context(sd, d.concept()))));
            int n = p.z().length;
            assertArrayEquals(java.util.Arrays.copyOfRange(fresh, 0, n), p.e0(), "e0");
            assertArrayEquals(java.util.Arrays.copyOfRange(fresh, n, 2 * n), p.ep(), "ep");
            // and so the iteration's loss is the unpooled one's, bit for bit
            assertEquals(unpooled.step(own).loss(), fast.step(d).loss());
        }
    }

    @Test
    void theModelCountsWhatAnIterationRuns() {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        EsdTrainer paper = trainer(be, sd, Schedule.PAPER);
        EsdTrainer.Iteration it = paper.step(paper.draw());
        // two forwards per guided step, e0 and ep, en; one backward
        assertEquals(2L * it.draw().plan().ddimSteps() + 3, it.evaluations().forwards());
        assertEquals(1, it.evaluations().backwards());

        // a full pool: the trajectory is sampled as deep as its deepest point, then one forward and backward each
        EsdTrainer fast = new EsdTrainer(be, sd, settings(sd, Schedule.PAPER, 11).fast(DDIM_STEPS));
        long forwards = 0, backwards = 0;
        for (int i = 0; i < DDIM_STEPS; i++) {
            EsdTrainer.Iteration f = fast.step(fast.draw());
            forwards += f.evaluations().forwards();
            backwards += f.evaluations().backwards();
        }
        assertEquals(2L * DDIM_STEPS + DDIM_STEPS, forwards);
        assertEquals(DDIM_STEPS, backwards);
    }

    private static esdnative.sched.DdimScheduler scheduler(StableDiffusion sd) {
        var s = new esdnative.sched.DdimScheduler(sd.scheduler());
        s.setTimesteps(DDIM_STEPS);
        return s;
    }

    private static int[] timesteps(StableDiffusion sd) { return scheduler(sd).timesteps(); }

    /** --reuse's default: every point of a trajectory, unless that leaves a run fewer than MIN_TRAJECTORIES of them. */
    @Test
    void defaultReuseKeepsShortRunsOnEnoughTrajectories() {
        assertEquals(50, TrajectoryPool.defaultReuse(1000, 50));   // SD's paper settings: all points, 20 trajectories
        assertEquals(4, TrajectoryPool.defaultReuse(60, 20));      // the toy demo: 15 trajectories
        assertEquals(1, TrajectoryPool.defaultReuse(3, 2));        // shorter than MIN_TRAJECTORIES: one point each
        for (int iterations = 1; iterations <= 200; iterations++) {
            int k = TrajectoryPool.defaultReuse(iterations, 20);
            int trajectories = (iterations + k - 1) / k;
            assertTrue(k == 1 || trajectories >= TrajectoryPool.MIN_TRAJECTORIES, iterations + " iterations: " + k);
        }
    }

    private static esdnative.tensor.Tensor context(StableDiffusion sd, String prompt) {
        return sd.textEncoder().forward(sd.tokenizer().encodePadded(prompt), 1);
    }
}
