package esdnative.backend.cuda;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The fake libcuda.so.1 and libcublas.so.13 the build makes (kernels/fake-driver, into target/fake-cuda), and
 * esd-native run on them in a new JVM: a driver, once loaded, stays loaded, so it never goes into the test JVM.
 */
final class FakeDriver {
    static final Path LIBRARIES = Path.of("target/fake-cuda");
    /** JCuda's driver-API native library inside the jcuda-natives jar on the class path. */
    static final String JCUDA_NATIVE = "libJCudaDriver-12.6.0-linux-x86_64.so";

    /** What a run printed (stdout and stderr together) and its exit code. */
    record Run(int exitCode, String output) {}

    private FakeDriver() {}

    /** The folder holding both fake libraries; aborts the test, printing why, only where no compiler could make them. */
    static Path libraries() {
        if (Files.isRegularFile(LIBRARIES.resolve("libcuda.so.1")) && Files.isRegularFile(LIBRARIES.resolve("libcublas.so.13"))) {
            return LIBRARIES.toAbsolutePath();
        }
        if (!onPath("g++") || !onPath("nm")) {
            String why = "no g++ or nm here, so the build made no fake CUDA libraries";
            System.out.println("SKIPPED: " + why);
            Assumptions.abort(why);
        }
        return Assertions.fail("the build makes " + LIBRARIES + " where g++ exists (kernels/fake-driver/build.sh)");
    }

    /** JCuda's native library, extracted from the class path into {@code folder}. */
    static Path extractJCudaNative(Path folder) throws IOException {
        try (InputStream in = FakeDriver.class.getResourceAsStream("/lib/" + JCUDA_NATIVE)) {
            Assertions.assertNotNull(in, JCUDA_NATIVE + " is on the class path (org.jcuda:jcuda-natives)");
            Path out = folder.resolve(JCUDA_NATIVE);
            Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
            return out;
        }
    }

    /** {@code esd-native ARGS} in a new JVM with this test's class path, ESD_CUDA_LIBS on the fake libraries. */
    static Run esdNative(Map<String, String> env, List<String> jvmOptions, String... args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path")));
        command.addAll(jvmOptions);
        command.add("esdnative.cli.Main");
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().put("ESD_CUDA_LIBS", libraries().toString());
        pb.environment().remove("ESD_CUDA_MATH");
        pb.environment().remove("ESD_CUDA_SYNC");
        pb.environment().putAll(env);
        Process p = pb.start();
        byte[] output = p.getInputStream().readAllBytes();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            Assertions.fail("esd-native " + String.join(" ", args) + " did not finish");
        }
        String text = new String(output, StandardCharsets.UTF_8);
        System.out.println(text);
        return new Run(p.exitValue(), text);
    }

    static boolean onPath(String program) {
        String path = System.getenv("PATH");
        if (path == null) return false;
        for (String dir : path.split(":")) if (Files.isExecutable(Path.of(dir, program))) return true;
        return false;
    }
}
