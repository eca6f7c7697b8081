package esdnative.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class HeapLauncherTest {
    private static final Optional<String> JAVA = Optional.of("/opt/java/bin/java");
    private static final Optional<String[]> ARGS = Optional.of(new String[] {"-Dx=1", "-jar", "esd-native.jar", "train", "-c", "a b"});

    @Test
    void withoutAHeapOptionTheSameCommandRunsAgainWithAHeapSizedByMemory() {
        assertEquals(Optional.of(List.of("/opt/java/bin/java", "-XX:MaxRAMPercentage=" + HeapLauncher.HEAP_PERCENT, HeapLauncher.CHILD_MARK,
                        "-Dx=1", "-jar", "esd-native.jar", "train", "-c", "a b")),
                HeapLauncher.relaunchCommand(List.of("-Dx=1"), null, JAVA, ARGS));
    }

    @Test
    void aHeapChosenByTheUserTheRelaunchedProcessOrTheVariableKeepThisProcess() {
        for (String option : List.of("-Xmx6g", "-XX:MaxHeapSize=6442450944", "-XX:MaxRAMPercentage=50", "-XX:MaxRAMFraction=2",
                "-XX:MaxRAM=8g", HeapLauncher.CHILD_MARK)) {
            assertEquals(Optional.empty(), HeapLauncher.relaunchCommand(List.of("-Dx=1", option), null, JAVA, ARGS), option);
        }
        assertEquals(Optional.empty(), HeapLauncher.relaunchCommand(List.of(), "0", JAVA, ARGS));
        assertEquals(Optional.empty(), HeapLauncher.relaunchCommand(List.of(), null, Optional.empty(), ARGS));
        assertEquals(Optional.empty(), HeapLauncher.relaunchCommand(List.of(), null, JAVA, Optional.empty()));
    }

    @Test
    void theRelaunchedJvmHasTheLargerHeapAndItsExitStatusIsReturned() throws Exception {
        Run version = launch(Map.of(), "--version");
        assertEquals(0, version.exit(), version.output());
        assertTrue(version.output().contains("esd-native "), version.output());
        List<Long> heaps = maxHeapsMiB(version.output());
        assertEquals(2, heaps.size(), "the launcher's JVM and the relaunched one: " + version.output());
        long memory = memoryMiB(version.output());
        assertTrue(Math.abs(heaps.get(1) - memory * HeapLauncher.HEAP_PERCENT / 100) <= memory / 50,
                "relaunched with " + heaps.get(1) + " MiB of " + memory + " MiB");
        assertTrue(heaps.get(1) > heaps.get(0), heaps.toString());

        Run bad = launch(Map.of(), "--no-such-option");
        assertEquals(2, bad.exit(), bad.output());
        assertEquals(2, maxHeapsMiB(bad.output()).size(), bad.output());

        Run off = launch(Map.of(HeapLauncher.DISABLE_VARIABLE, "0"), "--version");
        assertEquals(0, off.exit(), off.output());
        assertEquals(1, maxHeapsMiB(off.output()).size(), off.output());
    }

    private record Run(int exit, String output) {}

    /** {@code java -Xlog:gc+init -cp <this test's class path> esdnative.cli.HeapLauncher ARGS}: each JVM logs its heap. */
    private static Run launch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xlog:gc+init", "-cp", System.getProperty("java.class.path"), "esdnative.cli.HeapLauncher"));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        for (String inherited : List.of("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", HeapLauncher.DISABLE_VARIABLE)) {
            pb.environment().remove(inherited);
        }
        pb.environment().putAll(env);
        Process p = pb.start();
        byte[] output = p.getInputStream().readAllBytes();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail("the launcher did not finish");
        }
        return new Run(p.exitValue(), new String(output, StandardCharsets.UTF_8));
    }

    private static List<Long> maxHeapsMiB(String log) {
        List<Long> heaps = new ArrayList<>();
        Matcher m = Pattern.compile("Heap Max Capacity: (\\d+)M").matcher(log);
        while (m.find()) heaps.add(Long.parseLong(m.group(1)));
        return heaps;
    }

    private static long memoryMiB(String log) {
        Matcher m = Pattern.compile("\\] Memory: (\\d+)M").matcher(log);
        if (!m.find()) fail("no memory size in the JVM's log: " + log);
        return Long.parseLong(m.group(1));
    }
}
