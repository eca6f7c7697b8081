package esdnative.cli.weights;

import esdnative.cli.Main;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class InspectCommandTest {
    @TempDir
    Path dir;

    private record Run(int exitCode, String out, String err) {}

    private static Run run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /** The summary row the command should print for a component file, from the file's own header. */
    private static String expectedRow(String component, Path file) {
        long tensors = 0, parameters = 0, bytes = 0;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (TensorInfo t : f.tensors()) {
                tensors++;
                parameters += t.numel();
                bytes += t.byteSize();
            }
        }
        return String.format(Locale.ROOT, "%-14s %8d %,15d %,16d  F32", component, tensors, parameters, bytes);
    }

    /**
     * SDXL: the folder's four components, and the original single file's tensors counted for the same components
     * (text_encoder_2's q/k/v fused there: fewer tensors, the same parameters and bytes).
     */
    @Test
    void countsSdxlComponentsOfFolderAndSingleFileAlike() {
        Path model = Fixtures.path("tiny-sdxl-a");
        List<String> rows = List.of(
                expectedRow("unet", model.resolve("unet/diffusion_pytorch_model.safetensors")),
                expectedRow("text_encoder", model.resolve("text_encoder/model.safetensors")),
                expectedRow("vae", model.resolve("vae/diffusion_pytorch_model.safetensors")));
        String text2 = expectedRow("text_encoder_2", model.resolve("text_encoder_2/model.safetensors"));

        Run folder = run("weights", "inspect", "--summary", model.toString());
        assertEquals(0, folder.exitCode(), folder.err());
        assertTrue(folder.out().contains("diffusers SDXL pipeline folder (unet, vae, text_encoder, text_encoder_2)"), folder.out());
        rows.forEach(row -> assertTrue(folder.out().contains(row + "\n"), row + "\nnot in\n" + folder.out()));
        assertTrue(folder.out().contains(text2 + "\n"), text2 + "\nnot in\n" + folder.out());

        Run single = run("weights", "inspect", "--summary", Fixtures.path("tiny-sdxl-a-single-file.safetensors").toString());
        assertEquals(0, single.exitCode(), single.err());
        assertTrue(single.out().contains("original SDXL single file, 661 tensors"), single.out());
        rows.forEach(row -> assertTrue(single.out().contains(row + "\n"), row + "\nnot in\n" + single.out()));
        String text2Counts = text2.substring(text2.indexOf(' ', 14)).replaceFirst("^ +\\d+", "");   // parameters, bytes, dtypes
        assertTrue(single.out().matches("(?s).*\ntext_encoder_2 +\\d+" + Pattern.quote(text2Counts) + "\n.*"),
                text2Counts + "\nnot in\n" + single.out());
        assertTrue(!single.out().contains("\nother "), single.out());
    }

    @Test
    void countsComponentsOfFolderAndSingleFileAlike() {
        Path model = Fixtures.path("tiny-sd-a");
        List<String> rows = List.of(
                expectedRow("unet", model.resolve("unet/diffusion_pytorch_model.safetensors")),
                expectedRow("text_encoder", model.resolve("text_encoder/model.safetensors")),
                expectedRow("vae", model.resolve("vae/diffusion_pytorch_model.safetensors")));

        Run folder = run("weights", "inspect", model.toString());
        assertEquals(0, folder.exitCode(), folder.err());
        assertTrue(folder.out().contains("diffusers pipeline folder (unet, text_encoder, vae)"), folder.out());
        assertTrue(folder.out().contains("diffusers UNet (UNet2DConditionModel), 304 tensors"), folder.out());
        assertTrue(folder.out().contains("metadata: format=pt"), folder.out());
        assertTrue(folder.out().matches("(?s).*\\n  conv_in\\.weight +F32  \\[32, 4, 3, 3]\\n.*"), folder.out());
        rows.forEach(row -> assertTrue(folder.out().contains(row + "\n"), row + "\nnot in\n" + folder.out()));

        Run single = run("weights", "inspect", Fixtures.path("tiny-sd-a-single-file.safetensors").toString());
        assertEquals(0, single.exitCode(), single.err());
        assertTrue(single.out().contains("CompVis/LDM single file, 464 tensors"), single.out());
        assertTrue(single.out().contains("model.diffusion_model.input_blocks.0.0.weight"), single.out());
        rows.forEach(row -> assertTrue(single.out().contains(row + "\n"), row + "\nnot in\n" + single.out()));
        assertTrue(single.out().contains("\ntotal               464 "), single.out());

        // the zip checkpoint holds the same weights plus the EMA copy, counted apart as "other"
        Run ckpt = run("weights", "inspect", "--summary", Fixtures.path("ckpt/tiny-sd-a.ckpt").toString());
        assertEquals(0, ckpt.exitCode(), ckpt.err());
        assertTrue(ckpt.out().contains("PyTorch checkpoint, CompVis/LDM single file, 770 tensors"), ckpt.out());
        assertTrue(ckpt.out().contains("metadata: global_step=470000, epoch=6"), ckpt.out());
        rows.forEach(row -> assertTrue(ckpt.out().contains(row + "\n"), row + "\nnot in\n" + ckpt.out()));
        assertTrue(ckpt.out().contains("\nother               306 "), ckpt.out());
        assertTrue(ckpt.out().contains("  EMA: 304 model_ema.* UNet copies;"), ckpt.out());

        Run component = run("weights", "inspect", "--summary", model.resolve("vae").toString());
        assertEquals(0, component.exitCode(), component.err());
        assertTrue(component.out().contains("diffusers VAE (AutoencoderKL), 124 tensors"), component.out());
        assertTrue(!component.out().contains("decoder.conv_in.weight"), "--summary lists no tensors");
    }

    @Test
    void badPathsExitTwoWithOneLine() throws IOException {
        Path missing = dir.resolve("missing.safetensors");
        Run r = run("weights", "inspect", missing.toString());
        assertEquals(2, r.exitCode());
        assertEquals("esd-native: " + missing + ": no such file or folder", r.err().strip());

        Path corrupt = dir.resolve("corrupt.safetensors");
        Files.write(corrupt, new byte[] {1, 2, 3});
        r = run("weights", "inspect", corrupt.toString());
        assertEquals(2, r.exitCode());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(corrupt.toString()), r.err());

        Path hostile = Fixtures.path("ckpt/hostile/reduce-os-system.ckpt");
        r = run("weights", "inspect", hostile.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("refusing pickle global posix.system"), r.err());

        Path emptyFolder = Files.createDirectory(dir.resolve("empty"));
        r = run("weights", "inspect", emptyFolder.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("no weights in this folder"), r.err());
    }
}
