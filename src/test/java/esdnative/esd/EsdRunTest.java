package esdnative.esd;

import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.ModelLoader;
import esdnative.model.StableDiffusion;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.model.unet.Evaluations;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The run loop on tiny-sd-a and tiny-sdxl-a (CPU, deterministic): a run stopped after its last periodic checkpoint
 * and resumed, or replayed from its trace, ends where the uninterrupted run does, in weights and in its log.
 */
class EsdRunTest {
    private static final int ITERATIONS = 5;

    private static EsdTrainer.Settings settings(int resolution, long seed) {
        return EsdTrainer.Settings.paper(List.of("a photo of a cat", "Van Gogh")).withIterations(ITERATIONS)
                .withLr(1e-3f).withDdimSteps(4).withResolution(resolution).withSeed(seed);
    }

    /** A crash inside iteration {@code at}, after it is logged. */
    private static EsdRun.Progress crashAt(int at) {
        return new EsdRun.Progress() {
            @Override
            public void iteration(EsdTrainer.Iteration it, int done, Evaluations.Count cost) {
                if (it.index() == at) throw new IllegalStateException("killed at iteration " + at);
            }
        };
    }

    @Test
    void aRunKilledAfterItsLastCheckpointResumesToTheUninterruptedWeightsAndLog(@TempDir Path tmp) throws IOException {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        assertResumesToTheUninterruptedRun(be, () -> new EsdTrainer(be, sd, settings(sd.defaultResolution(), 11)), tmp);
    }

    /**
     * The same on tiny-sdxl-a at its 32 px: SDXL's pooled embeddings and time ids go into every UNet call, its checkpoint
     * spans the same state (esd-x's attn2 tensors and their Adam moments).
     */
    @Test
    void anSdxlRunKilledAfterItsLastCheckpointResumesToTheUninterruptedWeightsAndLog(@TempDir Path tmp) throws IOException {
        Backend be = new CpuBackend();
        StableDiffusionXL xl = StableDiffusionXL.loadFolder(be, Fixtures.path("tiny-sdxl-a"));
        assertResumesToTheUninterruptedRun(be, () -> new EsdTrainer(be, xl, settings(xl.defaultResolution(), 11)), tmp);
    }

    /** Kills a run inside iteration 3, after its checkpoint at 2, resumes it, and compares it with a run never stopped. */
    private static void assertResumesToTheUninterruptedRun(Backend be, Supplier<EsdTrainer> trainer, Path tmp) throws IOException {
        EsdTrainer straight = trainer.get();
        Path straightLog = tmp.resolve("straight.log.jsonl");
        assertTrue(new EsdRun(straight).logTo(straightLog).train());

        Path checkpoint = tmp.resolve("run.checkpoint.safetensors");
        Path log = tmp.resolve("run.log.jsonl");
        EsdTrainer killed = trainer.get();
        try (EsdRun run = new EsdRun(killed).checkpointTo(checkpoint, 2).logTo(log).reportTo(crashAt(3))) {
            assertThrows(IllegalStateException.class, run::train);
        }
        assertEquals(3, Files.readAllLines(log).size(), "iteration 3 ran after the checkpoint");
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint)) {
            assertEquals("2", f.metadata().get("iteration"));
        }

        EsdTrainer resumed = trainer.get();
        assertEquals(2, Checkpoint.restore(checkpoint, resumed));
        try (EsdRun run = new EsdRun(resumed).checkpointTo(checkpoint, 2).logTo(log)) {
            assertTrue(run.train());
            assertEquals(ITERATIONS - 2, run.evaluations().backwards(), "the resumed run ran iterations 3 to 5");
            assertTrue(run.saveFinished("the finished training is in the checkpoint"));
            try (SafetensorsFile f = SafetensorsFile.open(checkpoint)) {
                assertEquals(Integer.toString(ITERATIONS), f.metadata().get("iteration"), "the finished training is saved");
            }
            run.outputWritten();
        }
        assertFalse(Files.exists(checkpoint), "removed once the output is complete");
        float[] trained = be.toHost(straight.subset().trained().flat());
        assertFalse(Arrays.equals(be.toHost(trainer.get().subset().trained().flat()), trained), "the run changed the weights");
        assertArrayEquals(trained, be.toHost(resumed.subset().trained().flat()));
        assertEquals(withoutSeconds(straightLog), withoutSeconds(log), "the log reads as the uninterrupted run's");
    }

    @Test
    void aFastRunReplayedFromItsTraceEndsWithTheSameWeightsAndLog(@TempDir Path tmp) throws IOException {
        Backend be = new CpuBackend();
        StableDiffusion sd = ModelLoader.load(be, Fixtures.path("tiny-sd-a"), null, null);
        Path trace = Files.createDirectories(tmp.resolve("trace"));
        EsdTrainer recorded = new EsdTrainer(be, sd, settings(sd.defaultResolution(), 11).fast(3));
        assertTrue(new EsdRun(recorded).traceTo(trace).logTo(tmp.resolve("recorded.jsonl")).train());

        EsdTrainer replayed = new EsdTrainer(be, sd, settings(sd.defaultResolution(), 999).fast(3)); // draws nothing: the seed must not matter
        assertTrue(new EsdRun(replayed).replayFrom(trace).logTo(tmp.resolve("replayed.jsonl")).train());
        assertArrayEquals(be.toHost(recorded.subset().trained().flat()), be.toHost(replayed.subset().trained().flat()));
        assertEquals(withoutSeconds(tmp.resolve("recorded.jsonl")), withoutSeconds(tmp.resolve("replayed.jsonl")));
    }

    /** The log's lines without their wall time. */
    private static List<ObjectNode> withoutSeconds(Path log) throws IOException {
        return Files.readAllLines(log).stream().map(line -> {
            try {
                ObjectNode node = (ObjectNode) Json.mapper().readTree(line);
                assertNotNull(node.remove("seconds"), line);
                return node;
            } catch (IOException e) {
                throw new AssertionError(line, e);
            }
        }).toList();
    }
}
