package esdnative.uce;

import esdnative.util.UserError;

/** Which of the authors' codes the edit follows (see ../shared/fixtures/README-uce.md). */
public enum UceForm {
    /**
     * The 2025 code ({@code trainscripts/uce_sd_erase.py}): one vector per concept, the last real token's state;
     * no implicit preservation.
     */
    F2025("2025"),
    /**
     * The paper's 2023 code ({@code train-scripts/train_erase.py edit_model}): the last token, EOS and every padding
     * row of each concept; "" always preserved (all its rows), preserve scale max(0.1, 1 / #preserved) by default.
     */
    F2023("2023");

    private final String id;

    UceForm(String id) { this.id = id; }

    public String id() { return id; }

    public static UceForm parse(String text) {
        for (UceForm f : values()) if (f.id.equals(text.trim())) return f;
        throw new UserError("unknown form '" + text + "'; valid: 2025, 2023");
    }
}
