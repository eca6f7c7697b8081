package esdnative.esd;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
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
        return new EsdTrainer(be, sd, new EsdTrainer.Settings(List.of("a photo of a cat", "Van Gogh"), TrainMethod.XATTN,
                4, 1e-3f, 1f, 3f, DDIM_STEPS, schedule, sd.defaultResolution(), 11));
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
        EsdTrainer selfattn = new EsdTrainer(be, sd, new EsdTrainer.Settings(List.of("a photo of a cat", "Van Gogh"),
                TrainMethod.SELFATTN, 4, 1e-3f, 1f, 3f, DDIM_STEPS, Schedule.PAPER, sd.defaultResolution(), 11));
        var e = assertThrows(esdnative.cli.UserError.class, () -> Checkpoint.restore(ckpt, selfattn));
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
            for (int i = 0; i < 3; i++) {
                EsdTrainer.Iteration it = recorded.step(recorded.draw());
                Trace.write(dir, it, latent);
                losses.add(it.loss());
            }
            // a replay draws nothing: a different seed must not matter
            EsdTrainer replay = new EsdTrainer(be, sd, new EsdTrainer.Settings(List.of("a photo of a cat", "Van Gogh"),
                    TrainMethod.XATTN, 4, 1e-3f, 1f, 3f, DDIM_STEPS, schedule, sd.defaultResolution(), 999));
            for (int i = 1; i <= 3; i++) assertEquals(losses.get(i - 1), replay.step(Trace.read(dir, i, replay)).loss());
            assertArrayEquals(be.toHost(recorded.subset().trained().flat()), be.toHost(replay.subset().trained().flat()));
            var e = assertThrows(esdnative.cli.UserError.class, () -> Trace.read(dir, 4, replay));
            assertTrue(e.getMessage().contains("iteration 4"), e.getMessage());
        }
    }
}
