package esdnative.uce;

import esdnative.util.UserError;

import java.util.ArrayList;
import java.util.List;

/**
 * One UCE edit: erase each concept towards its guide while keeping the preserved concepts.
 *
 * @param guides        one guide for every erased concept, or one per concept in the same order
 * @param preserveScale null: the form's default (2025: 1; 2023: max(0.1, 1 / #preserved, "" included))
 * @param lamb          λ, the weight of the original matrix (keeps W on directions no concept touches)
 */
public record UceSettings(UceForm form, List<String> erase, List<String> guides, List<String> preserve,
                          double eraseScale, Double preserveScale, double lamb) {
    /** The authors' defaults: erase scale 1, preserve scale 1 (2025), λ 0.5. */
    public static final double DEFAULT_LAMB = 0.5;

    public UceSettings {
        erase = List.copyOf(erase);
        guides = List.copyOf(guides);
        preserve = List.copyOf(preserve);
        if (guides.size() != 1 && guides.size() != erase.size()) {
            throw new UserError("give one guide for every erased concept or one per concept: " + guides.size()
                    + " guides for " + erase.size() + " concepts");
        }
        if (!(lamb > 0)) throw new UserError("lamb must be positive (it keeps the edit solvable), got " + lamb);
        if (!(eraseScale >= 0)) throw new UserError("the erase scale must be 0 or more, got " + eraseScale);
        if (preserveScale != null && !(preserveScale >= 0)) {
            throw new UserError("the preserve scale must be 0 or more, got " + preserveScale);
        }
    }

    /** The guide of erased concept {@code i}. */
    public String guide(int i) { return guides.size() == 1 ? guides.getFirst() : guides.get(i); }

    /** The preserved texts as the form uses them: the 2023 code always adds "" first. */
    public List<String> preserved() {
        if (form == UceForm.F2025) return preserve;
        List<String> all = new ArrayList<>();
        all.add("");
        all.addAll(preserve);
        return all;
    }

    /** The preserve scale in effect. */
    public double effectivePreserveScale() {
        if (preserveScale != null) return preserveScale;
        return form == UceForm.F2025 ? 1 : Math.max(0.1, 1.0 / preserved().size());
    }
}
