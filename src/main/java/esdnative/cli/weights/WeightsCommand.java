package esdnative.cli.weights;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code esd-native weights ...}: tools for weight files. */
@Command(name = "weights",
        description = "Weight-file tools: inspect, convert and diff safetensors files, checkpoints and diffusers folders; make random models.",
        subcommands = {InspectCommand.class, ConvertCommand.class, DiffCommand.class, MakeTinyCommand.class,
                ExtractLoraCommand.class})
public final class WeightsCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
