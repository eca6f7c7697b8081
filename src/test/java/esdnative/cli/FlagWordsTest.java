package esdnative.cli;

import esdnative.checkpoint.Layout;
import esdnative.backend.cpu.CpuBackend;
import esdnative.esd.Checkpoint;
import esdnative.esd.EsdOutput;
import esdnative.esd.Schedule;
import esdnative.esd.Trace;
import esdnative.esd.TrainedNames;
import esdnative.esd.TrainMethod;
import esdnative.eval.EvalPrompts;
import esdnative.lora.LoraSettings;
import esdnative.model.ModelConfig;
import esdnative.model.ModelLoader;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import esdnative.uce.UceForm;
import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The core says what is wrong with a value; the command that took it from a flag names the flag. */
class FlagWordsTest {
    @Test
    void theCoreNamesNoFlag(@TempDir Path tmp) throws Exception {
        Path model = Fixtures.path("tiny-sd-a"), missing = tmp.resolve("missing"), existing = Files.createFile(tmp.resolve("e.safetensors"));
        var tinyUnet = UNet2DConditionModel.parameterShapes(UNetConfig.fromJson(model.resolve("unet/config.json")));
        for (Executable bad : new Executable[] {() -> TrainMethod.parse("nope"), () -> Schedule.parse("nope"),
                () -> UceForm.parse("2024"), () -> LoraSettings.parseRank("0"), () -> EvalPrompts.preset("nope", 0),
                () -> Layout.outputFormat("nope"),
                () -> ModelLoader.checkPredictionType("sample"), () -> ModelLoader.checkEmaSource(model),
                () -> ModelLoader.findTokenizer(tmp, null), () -> ModelLoader.load(new CpuBackend(), missing, null, null),
                () -> ModelLoader.checkPredictionType(model, "v_prediction"), () -> ModelLoader.checkConfigFolder(tmp),
                () -> ModelLoader.unetConfig(model.resolve("unet/config.json"), tmp), () -> ModelConfig.of("nope"),
                () -> EsdOutput.checkWritable(existing, Layout.SINGLE_FILE, false),
                () -> EsdOutput.checkWritable(tmp.resolve("x.ckpt"), Layout.SINGLE_FILE, false),
                () -> EsdOutput.checkWritable(missing.resolve("x.safetensors"), Layout.SINGLE_FILE, false),
                () -> TrainedNames.count(TrainMethod.XLAYER, tinyUnet), () -> Checkpoint.restore(missing, null),
                () -> Trace.read(tmp, 1, null)}) {
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
        assertRefused("esd-native: --prediction-type: unknown prediction type 'sample'; valid: epsilon, v_prediction",
                "generate", "--model", model, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(), "--prediction-type", "sample");
        assertRefused("esd-native: --ema: " + model + " is a diffusers folder",
                "generate", "--model", model, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(), "--ema");
        assertRefused("esd-native: --tokenizer: tokenizer folder " + tmp + " has no vocab.json",
                "uce", "--model", model, "--erase", "a cat", "--output", out, "--tokenizer", tmp.toString());
        assertRefused("esd-native: --output: " + tmp + " is a folder but not a model folder",
                "uce", "--model", model, "--erase", "a cat", "--output", tmp.toString(), "--overwrite");
        assertRefused("esd-native: --output: " + model + " already exists",
                "train", "--model", model, "--concept", "a cat", "--output", model);
        assertRefused("esd-native: --resume: checkpoint " + out + " not found",
                "train", "--model", model, "--concept", "a cat", "--output", out, "--resume", out, "--iterations", "1",
                "--ddim-steps", "2", "--backend", "cpu");
        assertRefused("esd-native: --method xlayer: selects no parameter of this UNet",   // the toy demo
                "train", "--method", "xlayer", "--iterations", "1", "--output", out);
        assertRefused("esd-native: --tokenizer: tokenizer folder " + tmp + " has no vocab.json",
                "bench", "--config", "tiny", "--tokenizer", tmp.toString(), "--backend", "cpu");
        assertRefused("esd-native: --config: config 'nope' is neither a diffusers folder nor one of ",
                "weights", "make-tiny", "--config", "nope", out);
        assertRefused("esd-native: --backend: unknown backend 'tpu'; valid: cpu, cuda, auto",
                "generate", "--model", model, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(), "--backend", "tpu");
    }

    /** Where a flag lifts a refusal (the core words it without flags), the command says which, after the core's words. */
    @Test
    void theCommandSaysWhichFlagLiftsARefusal(@TempDir Path tmp) {
        String model = Fixtures.path("tiny-sd-a").toString(), singleFile = Fixtures.path("tiny-sd-a-single-file.safetensors").toString();
        assertRefusedWith("esd-native: --output: " + model + " already exists; pass --overwrite to replace it",
                "train", "--model", model, "--concept", "a cat", "--output", model);
        assertRefusedWith("esd-native: --output: " + model + " already exists; pass --overwrite to replace it",
                "uce", "--model", model, "--erase", "a cat", "--output", model);
        assertRefusedWith("esd-native: --prediction-type: a prediction type is for single files: " + model
                        + "'s scheduler config says epsilon",
                "generate", "--model", model, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(),
                "--prediction-type", "v_prediction");
        assertRefusedWith("esd-native: --config: " + tmp.resolve("unet/config.json") + " not found: the config folder needs unet/config.json",
                "generate", "--model", singleFile, "--prompt", "a cat", "--output", tmp.resolve("a.png").toString(),
                "--config", tmp.toString());
    }

    private static void assertRefusedWith(String line, String... args) {
        Cli r = Cli.run(args);
        assertEquals(2, r.exit(), r.err());
        assertEquals(line, r.err().strip().lines().reduce((a, b) -> b).orElse(""), r.err());
    }

    private static void assertRefused(String start, String... args) {
        Cli r = Cli.run(args);
        assertEquals(2, r.exit(), r.err());
        String last = r.err().strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith(start), "expected \"" + start + "...\", got: " + r.err());
    }
}
