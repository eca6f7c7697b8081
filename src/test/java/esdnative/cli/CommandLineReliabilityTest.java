package esdnative.cli;

import esdnative.options.BackendOptions;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** generate, weights and the top level under the audit's bad input (issue 12): one line, exit 2, nothing written. */
class CommandLineReliabilityTest {
    @Test
    void everyCommandAnswersHelp() {
        List<List<String>> paths = new ArrayList<>();
        collect(new CommandLine(new Main()), new ArrayList<>(), paths);
        assertTrue(paths.size() > 10, paths.toString());
        for (List<String> path : paths) {
            List<String> args = new ArrayList<>(path);
            args.add("--help");
            assertEquals(0, Main.run(args.toArray(String[]::new)), String.join(" ", args));
        }
    }

    @Test
    void outOfMemoryIsOneLineSayingHowToRaiseTheHeap() {
        StringWriter text = new StringWriter();
        assertEquals(2, Main.report(new OutOfMemoryError("Java heap space"), new PrintWriter(text), false));
        String[] lines = text.toString().split("\n");
        assertEquals(1, lines.length, text.toString());
        assertTrue(lines[0].contains("-Xmx") && lines[0].contains("JAVA_TOOL_OPTIONS"), lines[0]);
    }

    @Test
    void theBackendLineIsShort() {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
        CommandLine.populateCommand(new BackendOptions(), "--backend", "auto").open(out::println).close();
        assertTrue(log.toString(StandardCharsets.UTF_8).length() < 80, log.toString(StandardCharsets.UTF_8));
    }

    @Test
    void generateRefusesBadValuesNamesAndSizesBeforeSampling(@TempDir Path tmp) throws IOException {
        String model = Fixtures.path("tiny-sd-a").toString();
        Path png = tmp.resolve("g.png");
        String[][] bad = {
                {"--guidance", "NaN", "--output", png.toString()},
                {"--eta", "NaN", "--output", png.toString()},
                {"--steps", "1000", "--output", png.toString()},
                {"--output", tmp.resolve("g.jpg").toString()},
                {"--width", "512", "--height", "512", "--output", png.toString()},   // attention over 256² latents
        };
        for (String[] args : bad) {
            List<String> full = new ArrayList<>(List.of("generate", "--model", model, "--prompt", "a cat"));
            full.addAll(List.of(args));
            // the quick defaults, unless the case gives its own value (picocli refuses an option twice)
            for (String[] quick : new String[][] {{"--steps", "2"}, {"--backend", "cpu"}, {"--width", "32"}, {"--height", "32"}}) {
                if (!full.contains(quick[0])) full.addAll(List.of(quick));
            }
            assertEquals(2, Main.run(full.toArray(String[]::new)), String.join(" ", args));
        }
        Files.writeString(png, "an image made earlier");
        assertEquals(2, Main.run("generate", "--model", model, "--prompt", "a cat", "--steps", "2", "--backend", "cpu",
                "--width", "32", "--height", "32", "--output", png.toString()));
        assertEquals("an image made earlier", Files.readString(png));
        assertEquals(List.of(png), list(tmp));
    }

    @Test
    void generateWritesNoImageFromNonFiniteWeights(@TempDir Path tmp) throws IOException {
        Path nanModel = TrainReliabilityTest.copyOfTinyModel(tmp.resolve("nan-model"));
        TrainReliabilityTest.rewrite(nanModel.resolve("unet/diffusion_pytorch_model.safetensors"), "conv_in.bias", Float.NaN);
        Path png = tmp.resolve("g.png");
        assertEquals(2, Main.run("generate", "--model", nanModel.toString(), "--prompt", "a cat", "--steps", "2",
                "--backend", "cpu", "--width", "32", "--height", "32", "--output", png.toString()));
        assertFalse(Files.exists(png));
    }

    @Test
    void convertNeverOverwritesWithoutBeingAsked(@TempDir Path tmp) throws IOException {
        Path a = tmp.resolve("a.safetensors"), b = tmp.resolve("b.safetensors");
        Files.copy(Fixtures.path("tiny-sd-a-single-file.safetensors"), a);
        Files.writeString(b, "another model");
        assertEquals(2, Main.run("weights", "convert", a.toString(), b.toString()));
        assertEquals("another model", Files.readString(b));
        assertEquals(0, Main.run("weights", "convert", a.toString(), b.toString(), "--overwrite"));
        try (esdnative.io.SafetensorsFile in = esdnative.io.SafetensorsFile.open(a);
             esdnative.io.SafetensorsFile replaced = esdnative.io.SafetensorsFile.open(b)) {
            assertTrue(in.names().containsAll(replaced.names()) && !replaced.names().isEmpty());
        }

        Path photos = Files.createDirectory(tmp.resolve("photos"));
        Files.writeString(photos.resolve("holiday.jpg"), "precious");
        assertEquals(2, Main.run("weights", "convert", a.toString(), photos.toString(), "--to", "diffusers", "--overwrite"));
        assertEquals("precious", Files.readString(photos.resolve("holiday.jpg")));
    }

    @Test
    void inspectRefusesAFifoInsteadOfHanging(@TempDir Path tmp) throws Exception {
        Path fifo = tmp.resolve("model.ckpt");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertEquals(2, Main.run("weights", "inspect", fifo.toString())));
    }

    private static void collect(CommandLine cli, List<String> path, List<List<String>> out) {
        out.add(List.copyOf(path));
        cli.getSubcommands().forEach((name, sub) -> {
            if (!name.equals(sub.getCommandName()) || name.equals("help")) return;   // aliases; help itself
            List<String> child = new ArrayList<>(path);
            child.add(name);
            collect(sub, child, out);
        });
    }

    private static List<Path> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }
}
