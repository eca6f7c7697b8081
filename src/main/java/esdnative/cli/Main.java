package esdnative.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
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
                esdnative.weights.WeightsCommand.class,
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

    /** Runs the command line and returns the exit code: 0 ok, 1 internal error, 2 bad input. */
    public static int run(String... args) {
        Main main = new Main();
        CommandLine cli = new CommandLine(main);
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            PrintWriter err = commandLine.getErr();
            UserError userError = findUserError(ex);
            if (userError != null) {
                err.println("esd-native: " + userError.getMessage());
            } else {
                err.println("esd-native: internal error: " + ex);
            }
            if (main.verbose) ex.printStackTrace(err);
            err.flush();
            return userError != null ? 2 : 1;
        });
        return cli.execute(args);
    }

    private static UserError findUserError(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof UserError u) return u;
        }
        return null;
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
