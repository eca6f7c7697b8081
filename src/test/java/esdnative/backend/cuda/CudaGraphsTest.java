package esdnative.backend.cuda;

import esdnative.io.Npy;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The guided sampling step as a CUDA graph, on the fake driver computing (kernels/fake-driver: launches run on the
 * kernel emulator, GEMMs on the CPU): {@code generate} with graphs (the first step eager, the second recorded
 * by stream capture and launched, the rest replays) samples the very latents of {@code ESD_CUDA_GRAPHS=0}. The
 * same kernels run in the same order on the same data, so the latents must be equal bit for bit; a replay that
 * ran stale kernel arguments, dropped or reordered a node, or read a timestep frozen at capture would differ.
 */
class CudaGraphsTest {
    /** a warm-up, the recorded step, one replay (the emulator runs a step of tiny-sd-a at 32 px in seconds, under load in 20 s) */
    private static final int STEPS = 3;

    @Test
    void replayedStepsSampleTheEagerLatents(@TempDir Path tmp) throws Exception {
        Run eager = generate(tmp, "eager", 32, Map.of("ESD_CUDA_GRAPHS", "0"));
        Run graphs = generate(tmp, "graphs", 32, Map.of());
        assertEquals(0, eager.counters.get("graph_launches"), "ESD_CUDA_GRAPHS=0 records no graph");
        // step 1 warms up eagerly; step 2 is recorded and launched; steps 3.. replay it
        assertEquals(STEPS - 1, graphs.counters.get("graph_launches"));
        assertTrue(graphs.counters.get("graph_nodes") > 100, graphs.counters.toString());
        assertTrue(graphs.counters.get("launches") < eager.counters.get("launches")
                        && graphs.counters.get("gemms") < eager.counters.get("gemms"),
                "a replay launches no kernel and calls no GEMM from the host: " + graphs.counters + " vs " + eager.counters);
        assertArrayEquals(eager.latents, graphs.latents, "latents through the graph = eager latents");
    }

    /**
     * At a size the UNet resizes through the host (an odd latent side), the step cannot be recorded: its warm-up
     * shows it (it downloads), and it stays eager: no capture is tried, so no call is refused.
     */
    @Test
    void aStepThatTalksToTheHostStaysEager(@TempDir Path tmp) throws Exception {
        Run graphs = generate(tmp, "graphs", 10, Map.of());   // latents 5×5 (the tiny VAE halves)
        assertEquals(0, graphs.counters.get("graph_launches"), graphs.counters.toString());
    }

    private record Run(Map<String, Long> counters, float[] latents) {}

    private static Run generate(Path tmp, String name, int size, Map<String, String> env) throws Exception {
        Path latents = tmp.resolve(name + size + ".npy");
        Map<String, String> withReport = new LinkedHashMap<>(env);
        withReport.put("ESD_FAKE_CUDA_REPORT", "1");
        FakeDriver.Run run = FakeDriver.esdNative(withReport, List.of(), "generate", "--backend", "cuda",
                "--model", Fixtures.path("tiny-sd-a").toString(), "--prompt", "a painting", "--steps",
                String.valueOf(STEPS), "--seed", "5", "--width", String.valueOf(size), "--height", String.valueOf(size),
                "--output", tmp.resolve(name + size + ".png").toString(), "--save-latents", latents.toString());
        assertEquals(0, run.exitCode(), run.output());
        Matcher m = Pattern.compile("fake cuda counters: (.*)").matcher(run.output());
        assertTrue(m.find(), run.output());
        Map<String, Long> counters = new LinkedHashMap<>();
        for (String pair : m.group(1).split(", ")) {
            String[] p = pair.trim().split(" ");
            counters.put(p[0], Long.parseLong(p[1]));
        }
        assertEquals(0, counters.get("rejected") + counters.get("unimplemented"), "no refused call: " + counters);
        return new Run(counters, Npy.read(latents).floats());
    }
}
