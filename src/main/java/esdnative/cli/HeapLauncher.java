package esdnative.cli;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The jar's entry point: runs {@link Main} with a heap bounded by the machine's memory rather than by the JVM's
 * default maximum (a quarter of it), which is too small to train or benchmark SD 1.x on a CPU (the SD 1.4 UNet's
 * backward at 512 px alone peaks at 14.6 GiB).
 *
 * <p>When the user chose no heap size, it starts the same command again (same java, options and arguments) with
 * {@code -XX:MaxRAMPercentage=}{@value #HEAP_PERCENT}, passes the terminal through, and exits with that process's
 * status. It runs {@link Main} itself, unchanged, when a heap option is given (on the command line, in
 * {@code JAVA_TOOL_OPTIONS} or {@code JDK_JAVA_OPTIONS}), when {@code ESD_NATIVE_RELAUNCH=0}, when the JVM cannot
 * tell its own command line, and in the relaunched process (marked, so it never loops).
 */
public final class HeapLauncher {
    /** share of physical memory (the container's limit, where there is one) the relaunched heap may grow to */
    static final int HEAP_PERCENT = 75;
    static final String CHILD_MARK = "-Desdnative.relaunched=true";
    static final String DISABLE_VARIABLE = "ESD_NATIVE_RELAUNCH";

    /** JVM options that set the maximum heap, directly or as a share of memory. */
    private static final List<String> HEAP_OPTIONS = List.of("-Xmx", "-XX:MaxHeapSize=", "-XX:MaxRAMPercentage=",
            "-XX:MaxRAMFraction=", "-XX:MaxRAM=");

    private HeapLauncher() {}

    public static void main(String[] args) {
        ProcessHandle.Info self = ProcessHandle.current().info();
        Optional<Process> child = relaunchCommand(ManagementFactory.getRuntimeMXBean().getInputArguments(),
                System.getenv(DISABLE_VARIABLE), self.command(), self.arguments()).flatMap(HeapLauncher::start);
        if (child.isEmpty()) {
            Main.main(args);
            return;
        }
        System.exit(waitFor(child.get()));
    }

    /**
     * The command that restarts this JVM with a sized heap, or empty when it should run as it is.
     *
     * @param jvmOptions this JVM's options, those from the environment included
     * @param disable    the value of {@value #DISABLE_VARIABLE}, or null
     * @param executable the java binary running now, when known
     * @param arguments  everything after it on the command line (options, -jar/-cp, class, arguments), when known
     */
    static Optional<List<String>> relaunchCommand(List<String> jvmOptions, String disable, Optional<String> executable,
                                                  Optional<String[]> arguments) {
        boolean sized = jvmOptions.stream().anyMatch(o -> o.equals(CHILD_MARK) || HEAP_OPTIONS.stream().anyMatch(o::startsWith));
        if (sized || "0".equals(disable) || executable.isEmpty() || arguments.isEmpty()) return Optional.empty();
        List<String> command = new ArrayList<>();
        command.add(executable.get());
        command.add("-XX:MaxRAMPercentage=" + HEAP_PERCENT);
        command.add(CHILD_MARK);
        command.addAll(List.of(arguments.get()));
        return Optional.of(command);
    }

    /** The command started with this process's terminal, or empty when it cannot start (then this one runs). */
    private static Optional<Process> start(List<String> command) {
        try {
            return Optional.of(new ProcessBuilder(command).inheritIO().start());
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /**
     * The child's exit status. Ctrl-C reaches both processes; a signal to this one alone (kill) is passed on; either
     * way this one waits for the child's shutdown (e.g. a training run saving its checkpoint) before it exits.
     */
    private static int waitFor(Process child) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            child.destroy();
            child.onExit().join();
        }, "esd-native-relaunched"));
        while (true) {
            try {
                return child.waitFor();
            } catch (InterruptedException ignored) {
                // keep waiting: the child decides when the run is over
            }
        }
    }
}
