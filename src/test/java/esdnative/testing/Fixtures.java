package esdnative.testing;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the reference fixtures live: $ESD_FIXTURES if set, else ../shared/fixtures beside the checkout.
 * Tests that need them call {@link #root()}, which skips the test (with the reason printed) when they are
 * missing; .ci/run separately fails when CI lacks them.
 */
public final class Fixtures {
    private Fixtures() {}

    public static Path root() {
        Path root = locate();
        if (!Files.isDirectory(root)) {
            String reason = "reference fixtures not found at " + root + " (set ESD_FIXTURES)";
            System.out.println("SKIPPED: " + reason);
            Assumptions.abort(reason);
        }
        return root;
    }

    public static Path path(String relative) {
        return root().resolve(relative);
    }

    public static Path golden(String name) {
        return root().resolve("tiny-sd-a-golden").resolve(name);
    }

    static Path locate() {
        String env = System.getenv("ESD_FIXTURES");
        if (env != null && !env.isBlank()) return Path.of(env);
        String dflt = System.getenv("ESD_FIXTURES_DEFAULT");
        if (dflt != null && !dflt.isBlank()) return Path.of(dflt);
        return Path.of("..", "shared", "fixtures").toAbsolutePath().normalize();
    }
}
