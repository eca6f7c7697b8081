package esdnative.selftest;

import java.util.ArrayList;
import java.util.List;

/** Everything {@code esd-native selftest} checks, in the order it prints them. */
public final class SelfTestCases {
    private SelfTestCases() {}

    public static List<OpCase> all() {
        List<OpCase> cases = new ArrayList<>(OpCases.all());
        cases.addAll(modelCases());
        return cases;
    }

    /**
     * Whole-model checks, after the single ops: the place for a UNet forward and backward on a tiny model and one
     * ESD training step, each an {@link OpCase} whose body builds the model on the backend it is given and returns
     * (or writes into OUTPUT tensors) what to compare. None yet.
     */
    static List<OpCase> modelCases() {
        return List.of();
    }
}
