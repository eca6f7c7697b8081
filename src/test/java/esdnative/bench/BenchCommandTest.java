package esdnative.bench;

import esdnative.backend.cpu.CpuBackend;
import esdnative.cli.Main;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchCommandTest {

    /** Runs the CLI, returning exit code and what it printed (stdout then stderr). */
    private static Result cli(String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream capture = new PrintStream(buffer, true, StandardCharsets.UTF_8);
        System.setOut(capture);
        System.setErr(capture);
        try {
            int code = Main.run(args);
            capture.flush();
            return new Result(code, buffer.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    private record Result(int code, String text) {}

    @Test
    void tinyUNetForwardRunsEndToEnd() {
        Result r = cli("bench", "--config", "tiny", "--what", "unet-forward,text", "--batch", "1", "--warmup", "0",
                "--repeat", "1");
        assertEquals(0, r.code(), r.text());
        assertTrue(r.text().contains("UNet forward, batch 1"), r.text());
        assertTrue(r.text().contains("conv2d[3x3]"), "per-op breakdown: " + r.text());
        assertTrue(r.text().contains("text encoder forward"), r.text());
        assertTrue(r.text().contains("peak resident memory"), r.text());
    }

    @Test
    void esdIterationOnTinySdA() {
        Result r = cli("bench", "--model", Fixtures.path("tiny-sd-a").toString(), "--what", "esd-iteration",
                "--resolution", "16", "--warmup", "0", "--repeat", "1");
        assertEquals(0, r.code(), r.text());
        assertTrue(r.text().contains("ESD-x iteration (25 DDIM steps, t_ddpm 510)"), r.text());
        // counted by the model: 25 guided steps of two forwards, e0/ep, en; one backward
        assertTrue(r.text().contains("UNet evaluations: 53 forwards, 1 backwards"), r.text());
        // --fast: the iteration that samples all 50 steps, then a pooled one (en and its backward only)
        assertTrue(r.text().contains("UNet evaluations: 101 forwards, 1 backwards"), r.text());
        assertTrue(r.text().contains("UNet evaluations: 1 forwards, 1 backwards"), r.text());
        assertTrue(r.text().contains("--fast per iteration over a 50-point pool"), r.text());
        // the breakdown lists ops above 0.1% of the time, so check one that always dominates (adamStep may not)
        assertTrue(r.text().contains("calls/run") && r.text().contains("conv2d[3x3]"), "per-op breakdown: " + r.text());
    }

    @Test
    void badFlagsExitTwoWithOneLine() {
        String[][] bad = {
                {"bench", "--what", "unet-sideways"},
                {"bench", "--config", "sd15"},
                {"bench", "--config", "sdxl", "--what", "text"},   // SDXL: the UNet's items only
                {"bench", "--config", "tiny", "--model", "/nonexistent"},
                {"bench", "--backend", "tpu"},
                {"bench", "--repeat", "0"},
                {"bench", "--warmup", "-1"},
                {"bench", "--batch", "0"},
                {"bench", "--config", "tiny", "--what", "unet-forward", "--resolution", "30"},
                {"bench", "--model", "/nonexistent/model", "--what", "text"},
                {"bench", "--repeat", "many"},
                {"bench", "--config", "tiny", "--what", "esd-iteration"},
        };
        for (String[] args : bad) {
            Result r = cli(args);
            assertEquals(2, r.code(), String.join(" ", args) + " → " + r.text());
        }
        Result r = cli("bench", "--what", "gemm,nope");
        assertEquals("esd-native: --what: 'nope' is not a benchmark (gemm, conv, unet-forward, unet-backward, text, "
                + "ddim-step, esd-iteration, clip-vision, uce)", r.text().strip());
    }

    @Test
    void uceTimesOneTenAndHundredConcepts() {
        Result r = cli("bench", "--config", "tiny", "--what", "uce", "--tokenizer", Fixtures.path("clip-tokenizer").toString(),
                "--warmup", "0", "--repeat", "1");
        assertEquals(0, r.code(), r.text());
        for (String n : new String[] {"1 concept erased", "10 concepts erased", "100 concepts erased"}) {
            assertTrue(r.text().contains("UCE edit, " + n), r.text());
        }
        assertTrue(r.text().contains("(12 tensors)"), r.text());
        assertEquals(2, cli("bench", "--config", "tiny", "--what", "uce").code(), "uce with --config needs --tokenizer");
    }

    @Test
    void tinyConfigIsTinySdAsArchitecture() {
        UNetConfig fixture = UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json"));
        assertEquals(fixture, BenchModel.random(new CpuBackend(), "tiny", null, 0).unetConfig());
    }
}
