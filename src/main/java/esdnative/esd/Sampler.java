package esdnative.esd;

import esdnative.util.UserError;

import java.util.Locale;

/** Which weights sample z in an ESD iteration (ESD-SPEC.md step 5). */
public enum Sampler {
    /** The paper code (train-esd.py): the model being trained, so z follows training. */
    TRAINABLE("trainable"),
    /** The authors' 2025 code (esd_sd.py): the original model, so trajectories do not depend on training. */
    FROZEN("frozen");

    private final String id;

    Sampler(String id) { this.id = id; }

    public String id() { return id; }

    public static Sampler parse(String text) {
        for (Sampler s : values()) if (s.id.equals(text.trim().toLowerCase(Locale.ROOT))) return s;
        throw new UserError("unknown sampler '" + text + "'; valid: trainable, frozen");
    }
}
