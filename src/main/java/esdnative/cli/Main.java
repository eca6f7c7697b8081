package esdnative.cli;

import esdnative.util.UserError;
import esdnative.backend.cuda.CudaException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.Properties;

/** The {@code esd-native} command: wires the subcommands; each lives in its own class. */
@Command(name = "esd-native",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Erase concepts from Stable Diffusion models (ESD, Gandikota et al. 2023), in pure Java.",
        subcommands = {
                CommandLine.HelpCommand.class,
                TrainCommand.class,
                GenerateCommand.class,
                esdnative.cli.weights.WeightsCommand.class,
                SelfTestCommand.class,
                OpBenchCommand.class,
                esdnative.bench.BenchCommand.class,
                esdnative.toy.ToyCommand.class,
                esdnative.sweep.SweepCommand.class,
                EvalCommand.class,
                esdnative.uce.UceCommand.class,
        })
public final class Main implements Runnable {

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "Show stack traces for errors.")
    boolean verbose;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code: 0 ok, 1 internal error, 2 bad input or out of memory. */
    public static int run(String... args) {
        Main main = new Main();
        CommandLine cli = new CommandLine(main);
        addHelpOption(cli);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> report(ex, commandLine.getErr(), main.verbose));
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {   // an Error passes picocli's handler by
            return report(e, cli.getErr(), main.verbose);
        }
    }

    /** One line for a failure (and its trace with --verbose); returns the exit code. */
    static int report(Throwable ex, PrintWriter err, boolean verbose) {
        UserError userError = find(ex, UserError.class);
        OutOfMemoryError oom = find(ex, OutOfMemoryError.class);
        CudaException cuda = find(ex, CudaException.class);
        int exit = 2;
        if (userError != null) {
            err.println("esd-native: " + userError.getMessage());
        } else if (oom != null) {
            err.println("esd-native: out of memory: " + heapAdvice());
        } else if (cuda != null && cuda.getMessage() != null && cuda.getMessage().contains("out of GPU memory")) {
            err.println("esd-native: " + cuda.getMessage() + "; use a smaller size, or --backend cpu");
        } else {
            err.println("esd-native: internal error: " + ex);
            exit = 1;
        }
        if (verbose) ex.printStackTrace(err);
        err.flush();
        return exit;
    }

    /** The heap's limit and how to raise it (where the machine has the memory). */
    static String heapAdvice() {
        Runtime rt = Runtime.getRuntime();
        double gib = 1024.0 * 1024 * 1024;
        long physical = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
        if (physical > 0 && rt.maxMemory() >= physical * HeapLauncher.HEAP_PERCENT / 100 * 0.95) {
            return String.format(Locale.ROOT, "the Java heap may use %.1f GiB of this machine's %.1f GiB, and this needs "
                    + "more; use a smaller size, or a machine with more memory", rt.maxMemory() / gib, physical / gib);
        }
        long suggested = Math.max(2, (long) Math.ceil(2 * rt.maxMemory() / gib));
        return String.format(Locale.ROOT, "the Java heap is limited to %.1f GiB (%.1f GiB in use); raise it with -Xmx, "
                        + "e.g. java -Xmx%dg -jar esd-native.jar ..., or JAVA_TOOL_OPTIONS=-Xmx%dg",
                rt.maxMemory() / gib, (rt.totalMemory() - rt.freeMemory()) / gib, suggested, suggested);
    }

    private static <T extends Throwable> T find(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) return type.cast(c);
        }
        return null;
    }

    /** Every command answers --help, also those (weights, toy, ...) whose class does not declare it. */
    private static void addHelpOption(CommandLine cli) {
        CommandLine.Model.CommandSpec spec = cli.getCommandSpec();
        if (spec.options().stream().noneMatch(CommandLine.Model.OptionSpec::usageHelp) && spec.findOption("--help") == null) {
            String[] names = spec.findOption("-h") == null ? new String[] {"-h", "--help"} : new String[] {"--help"};
            spec.addOption(CommandLine.Model.OptionSpec.builder(names).usageHelp(true)
                    .description("Show this help message and exit.").build());
        }
        cli.getSubcommands().values().stream().distinct().forEach(Main::addHelpOption);
    }

    /** Reads the version that Maven filtered into esd-native.properties. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = Main.class.getResourceAsStream("/esd-native.properties")) {
                if (in != null) p.load(in);
            }
            return new String[] {"esd-native " + p.getProperty("version", "unknown"),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")"};
        }
    }
}
