package esdnative.backend.cuda;

import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Tells whether the CUDA backend can run here, by trying exactly what the backend does at start (kernels in the
 * jar, the driver, a device, its context, PTX loading, cuBLAS), on a daemon thread with a time limit. Never
 * throws and never hangs: a machine without a GPU or driver gets "unavailable" and a one-line reason.
 */
public final class CudaProbe {
    /** How long starting the backend may take (the driver JIT-compiles the PTX on first use). */
    static final long TIMEOUT_SECONDS = 90;

    /**
     * The outcome: available with a description of the device and libraries, or unavailable with a one-line reason
     * and, when something threw, the whole cause chain (every cause's full message; JCuda's load errors carry its
     * attempts and their stack traces in theirs). {@code cause} is empty otherwise.
     */
    public record Result(boolean available, String description, String cause) {
        Result(boolean available, String description) {
            this(available, description, "");
        }

        static Result failed(Throwable t) {
            return new Result(false, reason(t), causeChain(t));
        }

        @Override
        public String toString() {
            return (available ? "cuda available: " : "cuda unavailable: ") + description;
        }
    }

    private CudaProbe() {}

    static Result run() {
        String missing = Arrays.stream(Kernel.values()).map(k -> k.module).distinct()
                .filter(m -> Ptx.read(m).isEmpty()).findFirst().orElse(null);
        if (missing != null) {
            return new Result(false, "this jar has no CUDA kernels (" + missing + ".ptx is missing: it was built"
                    + " without nvcc)");
        }
        CompletableFuture<Result> attempt = new CompletableFuture<>();
        Thread worker = new Thread(() -> attempt.complete(tryStart()), "cuda-probe");
        worker.setDaemon(true); // a driver call that never returns must not keep the JVM alive
        worker.start();
        try {
            return attempt.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            return new Result(false, "starting CUDA did not finish within " + TIMEOUT_SECONDS + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(false, "interrupted while starting CUDA");
        } catch (ExecutionException e) {
            return Result.failed(e.getCause());
        }
    }

    private static Result tryStart() {
        try {
            CudaLibraries libraries = CudaLibraries.standard();
            libraries.loadDriver();
            try (CudaBackend backend = new CudaBackend(CudaBackend.MathMode.DEFAULT)) {
                return new Result(true, backend.describe());
            }
        } catch (Throwable t) { // UnsatisfiedLinkError, NoClassDefFoundError, JCuda's and our exceptions alike
            return Result.failed(t);
        }
    }

    /** One line saying what failed. */
    static String reason(Throwable t) {
        String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        String firstLine = message.lines().findFirst().orElse(message).trim();
        if (t instanceof CudaException) return firstLine;
        if (t instanceof LinkageError) return "JCuda's native library could not load (" + firstLine + ")";
        return t.getClass().getSimpleName() + ": " + firstLine;
    }

    /** Every throwable of the chain with its class and full message, outermost first, one "caused by" each. */
    static String causeChain(Throwable t) {
        StringBuilder out = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (!out.isEmpty()) out.append("\ncaused by: ");
            out.append(c.getClass().getName()).append(": ").append(c.getMessage());
        }
        return out.toString();
    }
}
