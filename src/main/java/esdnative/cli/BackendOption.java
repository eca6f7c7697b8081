package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.backend.cpu.CpuBackend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaProbe;

import java.io.PrintStream;
import java.util.Locale;

/**
 * {@code --backend cpu|cuda|auto}: auto takes CUDA when it loads, else the CPU with one short line (the probe's
 * full reason is what {@code --backend cuda} refuses with).
 */
public final class BackendOption {
    private BackendOption() {}

    public static Backend create(String choice, PrintStream log) {
        return switch (choice.trim().toLowerCase(Locale.ROOT)) {
            case "cpu" -> new CpuBackend();
            case "cuda" -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (!probe.available()) throw new UserError("--backend cuda: " + probe.description());
                yield CudaBackend.create();
            }
            case "auto" -> {
                CudaProbe.Result probe = CudaBackend.probe();
                if (probe.available()) yield CudaBackend.create();
                log.println("backend: cpu (no usable CUDA; --backend cuda says why)");
                yield new CpuBackend();
            }
            default -> throw new UserError("--backend: unknown backend '" + choice + "'; valid: cpu, cuda, auto");
        };
    }
}
