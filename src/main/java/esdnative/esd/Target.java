package esdnative.esd;

import esdnative.util.UserError;

import java.util.Locale;

/**
 * The ESD regression target the trainable model's en is pulled towards, from the frozen model's e0 (null prompt)
 * and ep (concept) with negative guidance η.
 */
public enum Target {
    /** The paper code (train-esd.py, ESD-SPEC.md): e0 − η (ep − e0), a step away from the concept past e0. */
    PAPER("paper"),
    /** The authors' 2025 code (esd_sd.py, esd_sdxl.py): ep − η (ep − e0), which is e0 at η = 1. */
    ESD_2025("esd-2025");

    private final String id;

    Target(String id) { this.id = id; }

    public String id() { return id; }

    public static Target parse(String text) {
        for (Target t : values()) if (t.id.equals(text.trim().toLowerCase(Locale.ROOT))) return t;
        throw new UserError("unknown target '" + text + "'; valid: paper, esd-2025");
    }

    /** The (e0, ep) weights of the target: a·e0 + b·ep. */
    float e0Weight(float eta) { return this == PAPER ? 1 + eta : eta; }

    float epWeight(float eta) { return this == PAPER ? -eta : 1 - eta; }
}
