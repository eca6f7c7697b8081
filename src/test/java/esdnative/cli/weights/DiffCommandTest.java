package esdnative.cli.weights;

import esdnative.cli.Main;
import esdnative.esd.TrainMethod;
import esdnative.esd.TrainedNames;
import esdnative.io.SafetensorsFile;
import esdnative.io.SafetensorsWriter;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.*;

class DiffCommandTest {
    @TempDir
    Path dir;

    private int exit;

    /** Runs the CLI and returns its stdout lines. */
    private List<String> run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            exit = Main.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return out.toString(StandardCharsets.UTF_8).lines().toList();
    }

    private static Set<String> changed(List<String> lines) {
        Set<String> names = new TreeSet<>();
        for (String l : lines) if (l.startsWith("changed ")) names.add(l.split("\\s+")[1]);
        return names;
    }

    @Test
    void esdXOutputDiffersOnlyInCrossAttention() {
        Path source = Fixtures.path("tiny-sd-a");
        Path out = dir.resolve("esd-x");
        assertEquals(0, Main.run("train", "--model", source.toString(), "--concept", "x", "--method", "xattn",
                "--iterations", "1", "--ddim-steps", "2", "--lr", "1e-3", "--backend", "cpu", "--output", out.toString()));
        List<String> lines = run("weights", "diff", source.toString(), out.toString());
        assertEquals(0, exit);
        Set<String> changed = changed(lines);
        Set<String> expected = new TreeSet<>();
        try (SafetensorsFile f = SafetensorsFile.open(source.resolve("unet/diffusion_pytorch_model.safetensors"))) {
            Predicate<String> xattn = TrainedNames.selector(TrainMethod.XATTN, f.names());
            for (String n : f.names()) if (xattn.test(n)) expected.add("unet/" + n);
        }
        assertFalse(expected.isEmpty());
        assertEquals(expected, changed);
        for (String n : changed) assertTrue(n.contains(".attn2."), n);
        assertTrue(lines.getLast().startsWith(expected.size() + " of "), lines.getLast());

        // the same comparison across layouts: the single-file source against the diffusers output
        assertEquals(changed, changed(run("weights", "diff", Fixtures.path("tiny-sd-a-single-file.safetensors").toString(), out.toString())));
    }

    /**
     * SDXL: the folder against the original single file is equal in all four components' tensors; with the first
     * element of one fused in_proj of text_encoder_2 changed, exactly its q part differs.
     */
    @Test
    void sdxlFolderAndSingleFileCompareByComponent() {
        Path folder = Fixtures.path("tiny-sdxl-a");
        Path single = Fixtures.path("tiny-sdxl-a-single-file.safetensors");
        int tensors = 0;
        for (String c : List.of("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model", "text_encoder_2/model")) {
            try (SafetensorsFile f = SafetensorsFile.open(folder.resolve(c + ".safetensors"))) {
                tensors += f.names().size();
            }
        }
        List<String> same = run("weights", "diff", folder.toString(), single.toString());
        assertEquals(0, exit);
        assertEquals(List.of("0 of " + tensors + " tensors changed"), same);

        Path edited = dir.resolve("edited.safetensors");
        String key = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight";
        try (SafetensorsFile f = SafetensorsFile.open(single)) {
            SequencedMap<String, SafetensorsWriter.Entry> entries = new LinkedHashMap<>();
            for (String n : f.names()) {
                if (n.equals(key)) {
                    float[] v = f.readFloats(n);
                    v[0] += 1;
                    entries.put(n, SafetensorsWriter.Entry.floats(f.dtype(n), f.shape(n), v));
                } else {
                    entries.put(n, SafetensorsWriter.Entry.raw(f.dtype(n), f.shape(n), f.raw(n)));
                }
            }
            SafetensorsWriter.write(edited, entries, Map.of());
        }
        List<String> lines = run("weights", "diff", folder.toString(), edited.toString());
        assertEquals(0, exit);
        assertEquals(Set.of("text_encoder_2/text_model.encoder.layers.0.self_attn.q_proj.weight"), changed(lines));
        assertEquals("1 of " + tensors + " tensors changed (text_encoder_2 1)", lines.getLast());

        run("weights", "diff", folder.toString(), Fixtures.path("tiny-sd-a").toString());
        assertEquals(2, exit);
    }

    @Test
    void layoutsAndCheckpointsCompareThroughTheNameTable() {
        Path folder = Fixtures.path("tiny-sd-a");
        // by default a checkpoint's raw UNet is compared, as the loaders take it
        List<String> same = run("weights", "diff", folder.toString(), Fixtures.path("ckpt/tiny-sd-a-legacy.ckpt").toString());
        assertEquals(0, exit);
        assertTrue(changed(same).isEmpty(), same.toString());
        assertTrue(same.getLast().startsWith("0 of 464 tensors changed"), same.getLast());

        // --ema: the checkpoint's EMA UNet (the folder has none): every UNet tensor is off by the fixture's 0.001
        List<String> ema = run("weights", "diff", "--ema", folder.toString(), Fixtures.path("ckpt/tiny-sd-a.ckpt").toString());
        assertEquals(304, changed(ema).size());
        for (String l : ema) {
            if (!l.startsWith("changed ")) continue;
            assertTrue(l.contains(" unet/"), l);
            double maxAbs = Double.parseDouble(l.split("max_abs ")[1].split("\\s+")[0]);
            assertEquals(0.001, maxAbs, 1e-5, l);   // 0.001 ± float32 rounding of x + 0.001 (|x| < 8)
        }
        assertTrue(ema.getLast().startsWith("304 of 464 tensors changed (unet 304)"), ema.getLast());

        run("weights", "diff", folder.toString(), dir.resolve("missing").toString());
        assertEquals(2, exit);
    }
}
