package esdnative.options;

import esdnative.lora.LoraSettings;
import picocli.CommandLine.Option;

/** The options of a {@code --format lora} output, shared by the commands that write one ({@code train}, {@code uce}). */
public final class LoraOptions {
    @Option(names = "--lora-rank", defaultValue = "8", paramLabel = "R", description = "--format lora: rank per module, "
            + "or full (exact). Default: ${DEFAULT-VALUE}.")
    String rank;

    @Option(names = "--lora-dtype", defaultValue = "fp16", paramLabel = "TYPE", description = "--format lora: fp16, bf16 or fp32. Default: ${DEFAULT-VALUE}.")
    String dtype;

    /** The parsed settings; refuses a bad rank or dtype with the flag's name. */
    public LoraSettings settings() {
        return new LoraSettings(Flags.about("--lora-rank", () -> LoraSettings.parseRank(rank)),
                Flags.about("--lora-dtype", () -> LoraSettings.parseDtype(dtype)));
    }
}
