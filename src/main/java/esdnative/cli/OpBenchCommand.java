package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.Backend;
import esdnative.backend.cuda.CudaBackend;
import esdnative.options.BackendOptions;
import esdnative.selftest.OpTimings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

/** {@code esd-native opbench}: times each backend op at SD 1.x training shapes and prints its rate. */
@Command(name = "opbench",
        description = {"Time the backend ops at the shapes of an ESD step on SD 1.x.",
                "",
                "Batch 2, 64x64 latents, 320 channels, 8 heads (--size tiny: 8x8 latents, for a quick check). Each op"
                        + " runs once to warm up, then for about --seconds; the rate is TFLOP/s for GEMM work and GB/s"
                        + " (the bytes the op must move at least) for the rest."},
        mixinStandardHelpOptions = true)
final class OpBenchCommand implements Callable<Integer> {
    @Mixin
    BackendOptions backend;

    @Option(names = "--size", defaultValue = "sd15", paramLabel = "sd15|tiny", description = "Default: sd15.")
    String size;

    @Option(names = "--seconds", defaultValue = "0.3", description = "Time per op. Default: 0.3.")
    double seconds;

    @Override
    public Integer call() {
        int latent = switch (size) {
            case "sd15" -> 64;
            case "tiny" -> 8;
            default -> throw new UserError("--size: expected sd15 or tiny, got '" + size + "'");
        };
        if (!(seconds > 0)) throw new UserError("--seconds: must be positive, got " + seconds);
        try (Backend be = backend.open(System.out::println)) {
            System.out.println("opbench on " + (be instanceof CudaBackend c ? "cuda: " + c.describe() : "cpu")
                    + ", latents " + latent + "x" + latent);
            for (OpTimings.Case c : OpTimings.cases(latent)) System.out.println(OpTimings.time(c, be, seconds));
            if (be instanceof CudaBackend c) System.out.println("GPU memory: " + c.memoryReport());
        }
        return 0;
    }
}
