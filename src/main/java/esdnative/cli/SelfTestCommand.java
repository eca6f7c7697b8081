package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;
import esdnative.options.BackendOptions;
import esdnative.selftest.OpCase;
import esdnative.selftest.SelfTest;
import esdnative.selftest.SelfTestCases;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code esd-native selftest}: runs every backend op on fresh random inputs and compares the CUDA backend with
 * the CPU reference, printing a table of relative errors. Asked for CUDA where none is usable, it prints why (the
 * whole cause chain), runs the CPU ops once for sanity and exits {@value #CUDA_UNAVAILABLE}: a device check must
 * not pass without having run.
 */
@Command(name = "selftest",
        description = {"Check every backend op on the GPU against the CPU reference.",
                "",
                "Each op runs on fresh random inputs; the table gives the relative error ||cuda-cpu||/||cpu|| (pass at"
                        + " <= 1e-5 in float32, <= 5e-3 for GEMM ops in TF32, <= 1e-2 in bf16; whole-model cases"
                        + " 3e-2 in TF32, 5e-2 in bf16) and whether two GPU runs were"
                        + " bit-identical. Exit 0 all passed, 1 a case failed, 3 CUDA was asked for and is"
                        + " unusable (it prints the whole cause, runs the CPU ops once for sanity and still exits 3).",
                "",
                "GPU precision (--precision, else ESD_CUDA_MATH, for train, generate, eval, bench and opbench): 'default' is PyTorch's default"
                        + " policy, TF32 tensor cores for convolutions only, strict float32 for matrix products and"
                        + " attention; 'tf32' every GEMM in TF32; 'fp32' strict float32 everywhere; 'bf16' GEMMs on"
                        + " bfloat16 operands with float32 accumulation. The self-test checks the two extremes by default:"
                        + " every op with TF32 GEMMs, then the GEMM ops in strict float32; --precision bf16 checks every op"
                        + " with bf16 GEMMs (the whole-model cases with their frozen weights in bf16)."},
        mixinStandardHelpOptions = true)
final class SelfTestCommand implements Callable<Integer> {
    /** The exit code when --backend cuda finds no usable GPU. */
    static final int CUDA_UNAVAILABLE = 3;

    /** cuda by default, unlike the other commands' auto: a device check must not pass on a machine without a GPU */
    @Option(names = "--backend", defaultValue = "cuda", paramLabel = "cuda|cpu|auto",
            description = "cuda: compare the GPU with the CPU reference (default); cpu: run the CPU ops once; auto: "
                    + "compare where a working GPU is found, else run the CPU ops once.")
    String backend;

    @Option(names = {"--precision", "--math"}, defaultValue = "both", paramLabel = "tf32|fp32|both|bf16",
            description = "GPU GEMM modes to check: all ops in TF32, then the GEMM ops again in strict float32"
                    + " (default: both); or all ops with bf16 GEMM operands.")
    String math;

    @Option(names = "--only", paramLabel = "TEXT", description = "Only the cases whose name contains TEXT (repeat"
            + " for several).")
    List<String> only;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the random inputs (default: 1).")
    long seed;

    @Override
    public Integer call() {
        PrintStream out = System.out;
        BackendOptions.Kind kind = BackendOptions.parseKind(backend);
        if (!List.of("tf32", "fp32", "both", "bf16").contains(math)) {
            throw new UserError("--precision: expected tf32, fp32, both or bf16, got '" + math + "'");
        }
        List<OpCase> cases = new ArrayList<>();
        for (OpCase c : SelfTestCases.all()) {
            if (only == null || only.stream().anyMatch(c.name()::contains)) cases.add(c);
        }
        if (cases.isEmpty()) throw new UserError("--only: no case name contains '" + String.join("' or '", only) + "'");
        out.printf("esd-native selftest: %d cases, seed %d%n", cases.size(), seed);

        if (kind == BackendOptions.Kind.CPU) return cpuSanity(cases, out);
        CudaProbe.Result probe = CudaBackend.probe();
        out.println(probe);
        if (!probe.available() && kind == BackendOptions.Kind.AUTO) {
            out.println("backend: cpu (auto: no usable CUDA)");
            return cpuSanity(cases, out);
        }
        if (!probe.available()) {
            if (!probe.cause().isEmpty()) out.println("cause:\n" + probe.cause());
            out.println("CUDA is unavailable, so there is nothing to compare; running the CPU ops once for sanity.");
            int cpu = cpuSanity(cases, out);
            out.println("selftest: FAILED (--backend cuda: CUDA is unavailable"
                    + (cpu == 0 ? "; the CPU sanity run passed)" : "; the CPU sanity run failed too)"));
            return CUDA_UNAVAILABLE;
        }
        boolean allPassed = true;
        if (math.equals("bf16")) {
            allPassed = compare(cases, CudaBackend.MathMode.BF16, out);
            out.println(allPassed ? "selftest: all passed" : "selftest: FAILED");
            return allPassed ? 0 : 1;
        }
        if (!math.equals("fp32")) allPassed &= compare(cases, CudaBackend.MathMode.TF32, out);
        if (!math.equals("tf32")) {
            List<OpCase> gemmCases = math.equals("both") ? cases.stream().filter(OpCase::gemm).toList() : cases;
            allPassed &= compare(gemmCases, CudaBackend.MathMode.FP32, out);
        }
        out.println(allPassed ? "selftest: all passed" : "selftest: FAILED");
        return allPassed ? 0 : 1;
    }

    private boolean compare(List<OpCase> cases, CudaBackend.MathMode mode, PrintStream out) {
        try (Backend cpu = new CpuBackend(); CudaBackend gpu = new CudaBackend(mode)) {
            out.printf("%ncuda (%s GEMMs) vs cpu: %s%n", mode, gpu.describe());
            header(out, "cuda vs cpu");
            int failed = 0;
            long start = System.nanoTime();
            for (OpCase c : cases) {
                double tolerance = mode == CudaBackend.MathMode.BF16 ? c.bf16Tolerance()
                        : c.tolerance(mode == CudaBackend.MathMode.TF32);
                SelfTest.Row row = SelfTest.compare(c, cpu, gpu, tolerance, seed);
                print(out, row);
                if (!row.passed()) failed++;
            }
            out.printf("%d of %d passed in %.1f s; GPU memory %s%n", cases.size() - failed, cases.size(),
                    (System.nanoTime() - start) / 1e9, gpu.memoryReport());
            return failed == 0;
        }
    }

    private int cpuSanity(List<OpCase> cases, PrintStream out) {
        try (Backend cpu = new CpuBackend()) {
            out.println();
            header(out, "cpu sanity");
            int failed = 0;
            for (OpCase c : cases) {
                SelfTest.Row row = SelfTest.sanity(c, cpu, seed);
                print(out, row);
                if (!row.passed()) failed++;
            }
            out.printf("cpu: %d of %d ran cleanly (outputs written and finite, nothing written out of bounds)%n",
                    cases.size() - failed, cases.size());
            return failed == 0 ? 0 : 1;
        }
    }

    private static void header(PrintStream out, String what) {
        out.printf("%-42s %-5s %-9s %-10s %-4s %-6s %s%n", "op (" + what + ")", "kind", "tolerance", "rel.error",
                "det", "result", "note");
    }

    private static void print(PrintStream out, SelfTest.Row r) {
        String tolerance = Double.isNaN(r.tolerance()) ? "-" : String.format(Locale.ROOT, "%.0e", r.tolerance());
        String error = Double.isNaN(r.relError()) ? (Double.isNaN(r.tolerance()) ? "-" : "NaN")
                : String.format(Locale.ROOT, "%.2e", r.relError());
        String note = r.note().isEmpty() && !r.worst().isEmpty() && !r.passed() ? "worst: " + r.worst() : r.note();
        out.printf(Locale.ROOT, "%-42s %-5s %-9s %-10s %-4s %-6s %s%n", r.name(), r.kind(), tolerance, error,
                r.determinism(), r.passed() ? "pass" : "FAIL", note);
    }
}
