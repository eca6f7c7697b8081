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
 * {@code --backend cpu|cuda|auto} and {@code --precision default|fp32|tf32|bf16}: where and how a command computes, one
 * parser and one default (auto) for every command. Auto takes CUDA when a working GPU is found, else the CPU with one
 * short line; {@code --backend cuda} refuses where there is none, with the probe's whole reason. The precision is the
 * GPU's ({@link CudaBackend.MathMode}); the CPU computes in float32 whatever is asked, except bf16, which it refuses
 * (it has no bf16 arithmetic, and a float32 run in its place would pass for a bf16 result). {@code --math} is the
 * precision's former name, still accepted (hidden).
 */
public final class BackendOptions {
    /** Which backend was asked for. */
    public enum Kind { CPU, CUDA, AUTO }

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "cpu|cuda|auto",
            description = "auto: CUDA when a working GPU is found, else the CPU; cpu; cuda (refuses without a GPU, saying why). "
                    + "Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--precision", paramLabel = "default|fp32|tf32|bf16",
            description = "GPU precision: default (PyTorch's: TF32 convolutions, strict float32 matrix products and "
                    + "attention), fp32 (strict float32 everywhere), tf32 (every GEMM in TF32) or bf16 (GEMMs on bfloat16 "
                    + "operands with float32 accumulation, frozen UNet weights stored in bfloat16; as torch.autocast with "
                    + "float32 master weights; GPU only). Default: $ESD_CUDA_MATH, else default.")
    String precision;

    /** The former name of --precision (default|tf32|fp32, now bf16 too). */
    @Option(names = "--math", hidden = true)
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

    /** The parsed {@code --precision} (or {@code --math}), else ESD_CUDA_MATH's, else the default policy. */
    public CudaBackend.MathMode mathMode() {
        if (precision != null && math != null) throw new UserError("--math is the former name of --precision: give one");
        if (precision != null) return Flags.about("--precision", () -> parseMath(precision));
        if (math != null) return Flags.about("--math", () -> parseMath(math));
        String env = System.getenv("ESD_CUDA_MATH");
        return env == null || env.isBlank() ? CudaBackend.MathMode.DEFAULT : Flags.about("ESD_CUDA_MATH", () -> parseMath(env));
    }

    /** Both flags checked, as a command does before any work. */
    public void check() {
        Kind kind = kind();
        if (mathMode() == CudaBackend.MathMode.BF16 && kind == Kind.CPU) throw bf16OnCpu("--backend cpu");
    }

    /** Opens the backend; {@code say} gets the one line of an auto choice that fell back to the CPU. */
    public Backend open(Consumer<String> say) {
        CudaBackend.MathMode mode = mathMode();
        return switch (kind()) {
            case CPU -> {
                if (mode == CudaBackend.MathMode.BF16) throw bf16OnCpu("--backend cpu");
                yield new CpuBackend();
            }
            case CUDA -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (!probe.available()) throw new UserError("--backend cuda: " + probe.description());
                yield new CudaBackend(mode);
            }
            case AUTO -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (probe.available()) yield new CudaBackend(mode);
                if (mode == CudaBackend.MathMode.BF16) throw bf16OnCpu("no usable CUDA here (--backend cuda says why), so the CPU");
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
            case "bf16" -> CudaBackend.MathMode.BF16;
            default -> throw new UserError("unknown precision '" + text + "'; valid: default, fp32, tf32, bf16");
        };
    }

    private static UserError bf16OnCpu(String which) {
        return new UserError("--precision bf16: " + which + " computes in float32 only; bf16 needs a GPU"
                + " (--backend cuda), or use --precision fp32");
    }
}
