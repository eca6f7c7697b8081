package esdnative.options;

import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;
import esdnative.util.UserError;
import picocli.CommandLine.Option;

import java.util.Locale;
import java.util.function.Consumer;

/**
 * {@code --backend cpu|cuda|auto} and {@code --math default|tf32|fp32}: where a command computes, one parser and one
 * default (auto) for every command. Auto takes CUDA when a working GPU is found, else the CPU with one short line;
 * {@code --backend cuda} refuses where there is none, with the probe's whole reason.
 */
public final class BackendOptions {
    /** Which backend was asked for. */
    public enum Kind { CPU, CUDA, AUTO }

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "cpu|cuda|auto",
            description = "auto: CUDA when a working GPU is found, else the CPU; cpu; cuda (refuses without a GPU, saying why). "
                    + "Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--math", paramLabel = "default|tf32|fp32",
            description = "GPU GEMM math: default (PyTorch's: TF32 convolutions, strict float32 matrix products and "
                    + "attention), tf32 (every GEMM in TF32) or fp32 (strict float32 everywhere). Default: $ESD_CUDA_MATH, else default.")
    String math;

    /** The parsed {@code --backend}. */
    public Kind kind() {
        return parseKind(backend);
    }

    /** A {@code --backend} value: cpu, cuda or auto. */
    public static Kind parseKind(String text) {
        return Flags.about("--backend", () -> switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "cpu" -> Kind.CPU;
            case "cuda" -> Kind.CUDA;
            case "auto" -> Kind.AUTO;
            default -> throw new UserError("unknown backend '" + text + "'; valid: cpu, cuda, auto");
        });
    }

    /** The parsed {@code --math}, else ESD_CUDA_MATH's, else the default policy. */
    public CudaBackend.MathMode mathMode() {
        if (math != null) return Flags.about("--math", () -> parseMath(math));
        String env = System.getenv("ESD_CUDA_MATH");
        return env == null || env.isBlank() ? CudaBackend.MathMode.DEFAULT : Flags.about("ESD_CUDA_MATH", () -> parseMath(env));
    }

    /** Both flags checked, as a command does before any work. */
    public void check() {
        kind();
        mathMode();
    }

    /** Opens the backend; {@code say} gets the one line of an auto choice that fell back to the CPU. */
    public Backend open(Consumer<String> say) {
        CudaBackend.MathMode mode = mathMode();
        return switch (kind()) {
            case CPU -> new CpuBackend();
            case CUDA -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (!probe.available()) throw new UserError("--backend cuda: " + probe.description());
                yield new CudaBackend(mode);
            }
            case AUTO -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (probe.available()) yield new CudaBackend(mode);
                say.accept("backend: cpu (no usable CUDA; --backend cuda says why)");   // one short line; the reason can be long
                yield new CpuBackend();
            }
        };
    }

    private static CudaBackend.MathMode parseMath(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "default" -> CudaBackend.MathMode.DEFAULT;
            case "tf32" -> CudaBackend.MathMode.TF32;
            case "fp32" -> CudaBackend.MathMode.FP32;
            default -> throw new UserError("unknown GPU math '" + text + "'; valid: default, tf32, fp32");
        };
    }
}
