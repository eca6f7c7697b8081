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

    /** The outcome: available with a description of the device and libraries, or unavailable with the reason. */
    public record Result(boolean available, String description) {
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
            return new Result(false, reason(e.getCause()));
        }
    }

    private static Result tryStart() {
        try {
            CudaLibraries libraries = CudaLibraries.standard();
            libraries.loadDriver();
            try (CudaBackend backend = new CudaBackend(CudaBackend.MathMode.TF32)) {
                return new Result(true, backend.describe());
            }
        } catch (Throwable t) { // UnsatisfiedLinkError, NoClassDefFoundError, JCuda's and our exceptions alike
            return new Result(false, reason(t));
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
}
