package esdnative.sweep;

import java.io.File;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/** The command line that starts esd-native the way this JVM was started: this java with the same jar or classpath. */
final class Launcher {
    private Launcher() {}

    static List<String> current() {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path codeSource;
        try {
            codeSource = Path.of(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toAbsolutePath();
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot locate esd-native's own classes", e);
        }
        if (Files.isRegularFile(codeSource)) return List.of(java, "-jar", codeSource.toString());
        // classes folders (tests, an IDE): the same classpath, made absolute; the jar's manifest grants native access
        String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(e -> !e.isEmpty()).map(e -> Path.of(e).toAbsolutePath().toString())
                .collect(Collectors.joining(File.pathSeparator));
        return List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", classpath, "esdnative.cli.Main");
    }
}
