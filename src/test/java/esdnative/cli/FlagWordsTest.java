package esdnative.cli;

import esdnative.checkpoint.Layout;
import esdnative.esd.Schedule;
import esdnative.esd.TrainMethod;
import esdnative.eval.EvalPrompts;
import esdnative.lora.LoraSettings;
import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import esdnative.uce.UceForm;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The core says what is wrong with a value; the command that took it from a flag names the flag. */
class FlagWordsTest {
    @Test
    void theCoreNamesNoFlag() {
        for (Executable bad : new Executable[] {() -> TrainMethod.parse("nope"), () -> Schedule.parse("nope"),
                () -> UceForm.parse("2024"), () -> LoraSettings.parseRank("0"), () -> EvalPrompts.preset("nope", 0),
                () -> Layout.outputFormat("nope")}) {
            String message = assertThrows(UserError.class, bad).getMessage();
            assertFalse(message.contains("--"), message);
        }
    }

    @Test
    void theCommandNamesTheFlag(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString(), out = tmp.resolve("out").toString();
        assertRefused("esd-native: --method: unknown train method 'nope'; valid: ",
                "train", "--model", model, "--concept", "a cat", "--method", "nope");
        assertRefused("esd-native: --schedule: unknown schedule 'nope'; valid: paper, aligned",
                "train", "--model", model, "--concept", "a cat", "--schedule", "nope");
        assertRefused("esd-native: --iterations: must be at least 1, got 0",
                "train", "--model", model, "--concept", "a cat", "--iterations", "0");
        assertRefused("esd-native: --form: unknown form '2024'; valid: 2025, 2023",
                "uce", "--model", model, "--erase", "a cat", "--output", out, "--form", "2024");
        assertRefused("esd-native: --format: unknown output format 'nope'; valid: diffusers, single-file, trained-only, lora",
                "uce", "--model", model, "--erase", "a cat", "--output", out, "--format", "nope");
        assertRefused("esd-native: --lora-rank: '0' is not a rank; give a positive integer or full",
                "uce", "--model", model, "--erase", "a cat", "--output", out, "--format", "lora", "--lora-rank", "0");
        assertRefused("esd-native: --preset: unknown preset 'nope'; valid: ",
                "eval", "--model", "toy", "--preset", "nope", "--out", out);
        assertRefused("esd-native: --backend: unknown backend 'tpu'; valid: cpu, cuda, auto",
                "generate", "--model", model, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(), "--backend", "tpu");
    }

    private static void assertRefused(String start, String... args) {
        Cli r = Cli.run(args);
        assertEquals(2, r.exit(), r.err());
        String last = r.err().strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith(start), "expected \"" + start + "...\", got: " + r.err());
    }
}
