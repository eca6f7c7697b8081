package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The real binding code — JCuda's driver API (context, stream, memory, PTX modules, cuLaunchKernel's parameter
 * packing) and cuBLAS through FFM (descriptors, argument order, constants) — run by {@code selftest --backend cuda}
 * on the fake driver (kernels/fake-driver): its launches run the kernels' CUDA sources on the CPU emulator, its
 * GEMMs check every argument and accumulate in float32, so a broken descriptor, argument order or kernel parameter
 * fails a case or is refused.
 */
class FakeDriverTest {
    /** Cases that reach every binding: both GEMM calls (interleaved attention batches too), im2col, big blocks, Adam. */
    private static final List<String> CASES = List.of("gemm", "conv2d 3x3 s2", "conv2dBackwardWeight 1x1",
            "attention cross", "attentionBackward", "groupNorm 2x64", "softmax 129", "adamStep", "mseLoss",
            "unet tiny forward+backward b2 #1");

    @Test
    void theSelfTestPassesThroughJCudaAndCublas(@TempDir Path jcudaFolder) throws Exception {
        FakeDriver.extractJCudaNative(jcudaFolder);
        String[] args = selftestArgs();
        // JCuda's native library from a folder given to the JVM, as the device check carries it (not java.io.tmpdir)
        FakeDriver.Run run = FakeDriver.esdNative(Map.of(), List.of("-Djava.library.path=" + jcudaFolder), args);
        assertEquals(0, run.exitCode(), "selftest on the fake driver");
        assertTrue(run.output().contains("cuda available: esd-native fake GPU"), run.output());
        assertTrue(run.output().contains("JCuda native " + jcudaFolder.resolve(FakeDriver.JCUDA_NATIVE)), run.output());
        assertTrue(run.output().contains("selftest: all passed"), run.output());
        assertFalse(run.output().contains("refused"), "no call was refused");
        assertFalse(run.output().contains("not implemented"), "only implemented driver functions were called");
    }

    @Test
    void aDeviceTooSmallFailsWithTheDriversOutOfMemory() throws Exception {
        FakeDriver.Run run = FakeDriver.esdNative(Map.of("ESD_FAKE_CUDA_MEMORY", "100000"), List.of(),
                "selftest", "--backend", "cuda", "--math", "fp32", "--only", "gemm NN");
        assertNotEquals(0, run.exitCode());
        assertTrue(run.output().contains("out of memory"), run.output());
    }

    @Test
    void theFakeDriverExportsEverySymbolJCudaImports(@TempDir Path folder) throws Exception {
        FakeDriver.libraries();
        Path jcuda = FakeDriver.extractJCudaNative(folder);
        assumeTrue(FakeDriver.onPath("nm"), "nm is not installed");
        TreeSet<String> imported = new TreeSet<>();
        for (String line : nm("--undefined-only", jcuda)) {
            String[] f = line.trim().split("\\s+");
            if (f[f.length - 1].startsWith("cu")) imported.add(f[f.length - 1]);
        }
        TreeSet<String> listed = new TreeSet<>();
        for (String line : Files.readAllLines(Path.of("kernels/fake-driver/jcuda-driver-imports.txt"))) {
            if (!line.startsWith("#") && !line.isBlank()) listed.add(line.trim());
        }
        assertEquals(imported, listed, "kernels/fake-driver/jcuda-driver-imports.txt is JCuda's import list");
        TreeSet<String> exported = new TreeSet<>();
        for (String line : nm("--defined-only", FakeDriver.libraries().resolve("libcuda.so.1"))) {
            String[] f = line.trim().split("\\s+");
            exported.add(f[f.length - 1]);
        }
        imported.removeAll(exported);
        assertTrue(imported.isEmpty(), "not exported by the fake: " + imported);
    }

    private static String[] selftestArgs() {
        List<String> args = new java.util.ArrayList<>(List.of("selftest", "--backend", "cuda"));
        for (String c : CASES) args.addAll(List.of("--only", c));
        return args.toArray(String[]::new);
    }

    private static List<String> nm(String which, Path library) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("nm", "-D", which, library.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out.lines().toList();
    }
}
