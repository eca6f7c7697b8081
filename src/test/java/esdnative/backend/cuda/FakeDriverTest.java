package esdnative.backend.cuda;

import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
    /**
     * Cases that reach every binding: both GEMM calls (interleaved attention batches too), im2col, big blocks, float
     * and 64-bit kernel parameters, two-dimensional grids of group norm's plane pieces, the fused ops (the whole-model
     * cases take minutes on the emulator: see benchmarks/gpu/README.md).
     */
    private static final List<String> CASES = List.of("gemm", "conv2d 3x3 s2", "conv2dBackwardWeight 1x1",
            "attention cross", "attentionBackward", "groupNorm 2x64", "groupNormSiluBackward 1x8",
            "conv2dSampleBias 3x3", "softmax 129", "adamStep", "mseLoss");

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
        assertTrue(run.output().contains("out of GPU memory"), run.output());
    }

    @Test
    void checkOnlyCountsAnEsdIterationOfTinySdA() throws Exception {
        Path model = Fixtures.path("tiny-sd-a");
        FakeDriver.Run run = FakeDriver.esdNative(Map.of(), List.of(), "bench", "--backend", "cuda", "--check-only",
                "--model", model.toString());
        assertEquals(0, run.exitCode(), "check-only on tiny-sd-a");
        assertTrue(run.output().contains("fake GPU (count only)"), run.output());
        Matcher counts = Pattern.compile("launches ([0-9,]+); gemms ([0-9,]+)").matcher(run.output());
        assertTrue(counts.find(), run.output());
        assertTrue(number(counts.group(2)) > 100, counts.group());
        assertTrue(run.output().contains("refused calls 0"), run.output());
        assertTrue(Pattern.compile("peak device memory [1-9][0-9,]* bytes").matcher(run.output()).find(), run.output());
        // the summary line; issue 17's design goals: one sync per iteration (the loss), no memset of outputs that
        // are overwritten anyway (before: more memsets than launches)
        Matcher summary = Pattern.compile("check-only esd-iteration: launches (\\d+), gemms (\\d+), memsets (\\d+),"
                + " syncs (\\d+), attention-bytes (\\d+), host-ms (\\d+), peak-device-bytes (\\d+), graph-launches (\\d+),"
                + " graph-nodes (\\d+)").matcher(run.output());
        assertTrue(summary.find(), run.output());
        long launches = Long.parseLong(summary.group(1)), memsets = Long.parseLong(summary.group(3));
        // the guided sampling steps replay one CUDA graph each (the warm-up iteration recorded it): the work the
        // iteration ran is the host's launches and the graphs' nodes (kernels, GEMMs, copies)
        long kernels = launches + Long.parseLong(summary.group(9));
        assertTrue(Long.parseLong(summary.group(8)) > 0, summary.group());
        assertTrue(kernels > 1000, summary.group());
        assertTrue(Long.parseLong(summary.group(4)) <= 1, summary.group());
        assertTrue(memsets * 10 < kernels, summary.group());
        assertTrue(Long.parseLong(summary.group(5)) > 0 && Long.parseLong(summary.group(7)) > 0, summary.group());
        // the fake's own share of the host time is measured inside its calls: some, and less than the whole
        Matcher host = Pattern.compile("host time ([0-9.]+) ms \\(this thread's CPU time ([0-9.]+) ms\\): ([0-9.]+) ms"
                + " inside the fake driver's and cuBLAS's calls").matcher(run.output());
        assertTrue(host.find(), run.output());
        double total = Double.parseDouble(host.group(1)), fake = Double.parseDouble(host.group(3));
        assertTrue(fake > 0 && fake < total && Double.parseDouble(host.group(2)) > 0, host.group());
    }

    /**
     * bf16 through the real binding — cublasGemmEx and cublasGemmStridedBatchedEx on CUDA_R_16BF operands, the cast
     * and im2col_bf16 kernels through JCuda's module loading and FFM launches — on the fake driver, whose cuBLAS reads
     * bf16 operands as the float32 values they stand for: a GEMM, the convolution ops and a tiny UNet forward+backward
     * (its weights frozen, stored in bf16) against the CPU's float32 within the bf16 tolerances. Each of those rows
     * must also differ from float32 by what bf16 rounding makes: a path that skipped the rounding would be within
     * float32's ~1e-6. (The ESD-x step in bf16 is Bf16CudaTest's, in this JVM: the emulator's minutes twice over
     * would not fit this run's time limit on a busy machine.)
     */
    @Test
    void bf16SelfTestPassesOnTheFakeDriverAndShowsTheRounding() throws Exception {
        FakeDriver.Run run = FakeDriver.esdNative(Map.of(), List.of(), "selftest", "--backend", "cuda", "--precision",
                "bf16", "--only", "gemm NN 67", "--only", "conv2d", "--only", "unet tiny forward+backward b2 #1");
        assertEquals(0, run.exitCode(), "bf16 selftest on the fake driver");
        assertTrue(run.output().contains("bf16 GEMM operands"), run.output());
        assertFalse(run.output().contains("refused"), "no call was refused");
        Matcher row = Pattern.compile("(?m)^((?:gemm|conv2d|unet tiny|esd-x step).*?)\\s+gemm\\s+(\\S+)\\s+(\\S+)\\s+yes\\s+pass")
                .matcher(run.output());
        int rows = 0;
        while (row.find()) {
            rows++;
            double error = Double.parseDouble(row.group(3)), tolerance = Double.parseDouble(row.group(2));
            assertTrue(error <= tolerance && error >= 1e-4, row.group(1) + ": relative error " + error);
        }
        assertTrue(rows >= 10, rows + " GEMM rows found in\n" + run.output());
        assertTrue(run.output().contains("unet tiny forward+backward b2 #1"), run.output());
    }

    private static long number(String withCommas) {
        return Long.parseLong(withCommas.replace(",", ""));
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
