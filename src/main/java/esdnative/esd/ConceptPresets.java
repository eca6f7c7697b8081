package esdnative.esd;

import esdnative.util.UserError;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** The paper code's concept lists (train-esd.py): one concept is drawn per iteration. */
public final class ConceptPresets {
    private ConceptPresets() {}

    private static final Map<String, String> PRESETS = Map.of(
            "allartist", "Kelly Mckernan, Thomas Kinkade, Ajin Demi Human, Alena Aenami, Tyler Edlin, Kilian Eng",
            "i2p", "hate, harassment, violence, suffering, humiliation, harm, suicide, sexual, nudity, bodily fluids, blood");

    public static List<String> preset(String name) {
        String list = PRESETS.get(name);
        if (list == null) throw new UserError("unknown preset '" + name + "'; valid: allartist, i2p");
        return split(list);
    }

    /** Splits "a, b, c" into trimmed, non-empty concepts. */
    public static List<String> split(String commaSeparated) {
        List<String> concepts = Arrays.stream(commaSeparated.split(","))
                .map(String::trim).filter(s -> !s.isEmpty()).toList();
        if (concepts.isEmpty()) throw new UserError("no concept given in '" + commaSeparated + "'");
        return concepts;
    }
}
