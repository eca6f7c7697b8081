package esdnative.options;

import esdnative.util.UserError;
import picocli.CommandLine.Option;

/** {@code --steps} and {@code --guidance}: how a command samples images (DDIM, classifier-free guidance). */
public final class SamplingOptions {
    @Option(names = "--steps", defaultValue = "50", description = "DDIM steps. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Option(names = {"--guidance", "--cfg-scale"}, defaultValue = "7.5", description = "Guidance scale. Default: ${DEFAULT-VALUE}.")
    float guidance;

    public int steps() { return steps; }

    public float guidance() { return guidance; }

    /** Refuses, before any work, a step count below 1 and a guidance that is not finite. */
    public void check() {
        if (steps < 1) throw new UserError("--steps: must be at least 1, got " + steps);
        if (!Float.isFinite(guidance)) throw new UserError("--guidance: must be finite, got " + guidance);
    }
}
