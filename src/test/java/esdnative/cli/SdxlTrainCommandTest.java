package esdnative.cli;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.esd.TrainMethod;
import esdnative.esd.TrainedNames;
import esdnative.io.Json;
import esdnative.io.SafetensorsFile;
import esdnative.model.sdxl.StableDiffusionXL;
import esdnative.testing.Cli;
import esdnative.testing.Fixtures;
import esdnative.testing.TinySdxl;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `train` on tiny-sdxl-a end to end: every method changes exactly the UNet tensors it selects (output vs input,
 * byte for byte), everything else of the folder is copied unchanged; the single file with --config gives a single
 * file whose changed keys are the authors' 60 esd-x tensors under their original names, or a folder.
 */
class SdxlTrainCommandTest {
    private static final String[] QUICK = {"--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu"};

    /** `train --concept "a photo of a cat"` with these flags at QUICK's settings; it must succeed. */
    private static void trainQuickly(List<String> flags) {
        List<String> args = new ArrayList<>(List.of("train", "--concept", "a photo of a cat"));
        args.addAll(flags);
        args.addAll(List.of(QUICK));
        Cli r = Cli.run(args.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
    }
    private static final String UNET = "unet/diffusion_pytorch_model.safetensors";

    @Test
    void everyMethodChangesExactlyTheTensorsItSelects(@TempDir Path tmp) throws IOException {
        Path source = TinySdxl.model("");
        for (TrainMethod m : TrainMethod.values()) {
            Path out = tmp.resolve(m.id());
            List<String> args = new ArrayList<>(List.of("train", "--model", source.toString(), "--concept", "a photo of a cat",
                    "--method", m.id(), "--output", out.toString()));
            args.addAll(List.of(QUICK));
            if (m == TrainMethod.XATTN) args.addAll(List.of("--fast", "--target", "esd-2025"));
            Cli r = Cli.run(args.toArray(String[]::new));
            if (m == TrainMethod.XLAYER) {
                // its rules name output_blocks.6/8, which a 2-level UNet lacks: refused in one line
                assertEquals(2, r.exit(), m.id() + ": " + r.err());
                assertTrue(r.err().contains("selects no parameter"), r.err());
                continue;
            }
            assertEquals(0, r.exit(), m.id() + ": " + r.err());
            Set<String> expected = new TreeSet<>();
            try (SafetensorsFile a = SafetensorsFile.open(source.resolve(UNET))) {
                Predicate<String> selected = TrainedNames.selector(m, a.names());
                a.names().stream().filter(selected).forEach(expected::add);
            }
            assertFalse(expected.isEmpty(), m.id());
            assertEquals(expected, changed(source.resolve(UNET), out.resolve(UNET)), m.id());
            if (m == TrainMethod.XATTN) assertEquals(authorsEsdX(), expected);
            // every other file of the folder, byte for byte
            try (Stream<Path> files = Files.walk(source)) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    String rel = source.relativize(f).toString();
                    if (!rel.equals(UNET)) assertEquals(-1, Files.mismatch(f, out.resolve(rel)), rel);
                }
            }
        }
    }

    @Test
    void singleFileWithConfigGivesASingleFileWithTheAuthorsTensorsChanged(@TempDir Path tmp) {
        Path source = Fixtures.path("tiny-sdxl-a-single-file.safetensors");
        Path out = tmp.resolve("erased.safetensors");
        trainQuickly(List.of("--model", source.toString(), "--config", TinySdxl.model("").toString(),
                "--output", out.toString()));
        var keyMap = Json.tree(Fixtures.path("tiny-sdxl-a-single-file.safetensors.conversion.json")).path("key_map");
        Set<String> expected = new TreeSet<>();
        for (String name : authorsEsdX()) expected.add(keyMap.path("unet/" + name).asText());
        assertEquals(60, expected.size());
        assertEquals(expected, changed(source, out));
    }

    /**
     * The folder written as a single file: every tensor but the trained ones byte for byte the fixture's single file
     * (written by diffusers' convert_diffusers_to_original_sdxl.py), the trained ones the authors' 60 under their keys.
     */
    @Test
    void folderToSingleFileIsDiffusersScriptsLayout(@TempDir Path tmp) {
        Path out = tmp.resolve("erased.safetensors");
        trainQuickly(List.of("--model", TinySdxl.model("").toString(), "--format", "single-file",
                "--output", out.toString()));
        var keyMap = Json.tree(Fixtures.path("tiny-sdxl-a-single-file.safetensors.conversion.json")).path("key_map");
        Set<String> expected = new TreeSet<>();
        for (String name : authorsEsdX()) expected.add(keyMap.path("unet/" + name).asText());
        assertEquals(expected, changed(Fixtures.path("tiny-sdxl-a-single-file.safetensors"), out));
    }

    /**
     * A single file written as a diffusers folder (--format diffusers): the folder --config names, file for file (every
     * weights file tensor for tensor, the rest byte for byte), but for the UNet's trained tensors, the authors' 60 —
     * trained exactly as a run on the folder trains them; our loader reads it back as that run's output.
     */
    @Test
    void singleFileToFolderIsTheFolderWithTheSameTraining(@TempDir Path tmp) throws IOException {
        Path source = TinySdxl.model("");
        Path fromSingle = tmp.resolve("from-single"), fromFolder = tmp.resolve("from-folder");
        for (List<String> run : List.of(
                List.of("--model", Fixtures.path("tiny-sdxl-a-single-file.safetensors").toString(), "--config", source.toString(),
                        "--format", "diffusers", "--output", fromSingle.toString()),
                List.of("--model", source.toString(), "--output", fromFolder.toString()))) {
            trainQuickly(run);
        }
        assertEquals(relativeFiles(source), relativeFiles(fromSingle));
        for (String rel : relativeFiles(source)) {
            Path theirs = source.resolve(rel), ours = fromSingle.resolve(rel);
            if (!rel.endsWith(".safetensors")) assertEquals(-1, Files.mismatch(theirs, ours), rel);
            else if (!rel.equals(UNET)) assertEquals(Set.of(), changed(theirs, ours), rel);
        }
        assertEquals(authorsEsdX(), changed(source.resolve(UNET), fromSingle.resolve(UNET)));
        assertEquals(Set.of(), changed(fromFolder.resolve(UNET), fromSingle.resolve(UNET)), "trained as from the folder");
        Backend be = new CpuBackend();
        StableDiffusionXL ours = StableDiffusionXL.loadFolder(be, fromSingle), folderRun = StableDiffusionXL.loadFolder(be, fromFolder);
        assertArrayEquals(be.toHost(folderRun.unetWeights().flat()), be.toHost(ours.unetWeights().flat()));
        assertArrayEquals(be.toHost(folderRun.vae().weights().flat()), be.toHost(ours.vae().weights().flat()));
    }

    /** The regular files under {@code dir}, relative to it. */
    private static Set<String> relativeFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).map(f -> dir.relativize(f).toString()).collect(Collectors.toCollection(TreeSet::new));
        }
    }

    /** --format lora: the trained attn2 tensors' change, named as kohya names SDXL's modules. */
    @Test
    void loraOutput(@TempDir Path tmp) {
        Path out = tmp.resolve("erased-lora.safetensors");
        trainQuickly(List.of("--model", TinySdxl.model("").toString(), "--format", "lora", "--output", out.toString()));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            // every trained 2-D weight (to_q, to_k, to_v, to_out.0 of each attn2) as a down, an up and an alpha; the
            // to_out.0 biases are not expressible as a LoRA
            long weights = authorsEsdX().stream().filter(n -> n.endsWith(".weight")).count();
            assertEquals(3 * weights, f.names().size());
            assertTrue(f.names().stream().allMatch(n -> n.startsWith("lora_unet_") && n.contains("attn2")));
        }
    }

    @Test
    void sdxlRefusals() {
        String model = TinySdxl.model("").toString();
        Cli noConfig = Cli.run("train", "--model", Fixtures.path("tiny-sdxl-a-single-file.safetensors").toString(),
                "--concept", "cat", "--dry-run");
        assertEquals(2, noConfig.exit());
        assertTrue(noConfig.err().contains("--config"), noConfig.err());
        Cli target = Cli.run("train", "--model", model, "--concept", "cat", "--target", "nope", "--dry-run");
        assertEquals(2, target.exit());
        assertTrue(target.err().contains("--target"), target.err());
    }

    /** The 60 tensors esd_sdxl.py's esd-x trains (the golden manifest's list). */
    private static Set<String> authorsEsdX() {
        Set<String> names = new TreeSet<>();
        Json.tree(TinySdxl.golden("manifest.json")).path("scalars").path("esd_trainable_parameter_names")
                .forEach(n -> names.add(n.asText()));
        return names;
    }

    /** The tensors whose bytes differ between two files with the same names. */
    private static Set<String> changed(Path a, Path b) {
        Set<String> changed = new TreeSet<>();
        try (SafetensorsFile x = SafetensorsFile.open(a); SafetensorsFile y = SafetensorsFile.open(b)) {
            assertEquals(new TreeSet<>(x.names()), new TreeSet<>(y.names()));
            for (String n : x.names()) if (x.raw(n).mismatch(y.raw(n)) != -1) changed.add(n);
        }
        return changed;
    }
}
