package esdnative.esd;

import esdnative.util.UserError;
import esdnative.tensor.Tensor;
import esdnative.checkpoint.CompVisNames;

import java.util.List;
import java.util.SequencedMap;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Applies a {@link TrainMethod} — whose rules are written on CompVis names — to the diffusers names our UNet
 * uses, by translating each name through the one name table first.
 */
public final class TrainedNames {
    private TrainedNames() {}

    /**
     * Accepts the diffusers UNet parameter names that {@code method} trains, for a UNet with these parameters; a
     * UserError when it trains none of them (training and {@code --dry-run} both refuse such a method this way).
     */
    public static Predicate<String> selector(TrainMethod method, Set<String> unetNames) {
        // the original names (CompVis's; SDXL's add_embedding is label_emb)
        CompVisNames table = CompVisNames.of(CompVisNames.Topology.fromDiffusers(unetNames, List.of()));
        String prefix = CompVisNames.Component.UNET.compVisPrefix();
        Predicate<String> trains = name -> {
            String original = table.toCompVis(CompVisNames.Component.UNET, name);
            if (original == null) throw new IllegalStateException("no CompVis name for UNet parameter " + name);
            return method.trains(original.substring(prefix.length()));
        };
        if (unetNames.stream().noneMatch(trains)) {
            // no subject: the command names the method as the user gave it ("--method xlayer: selects no ...")
            throw new UserError("selects no parameter of this UNet (its rules name blocks of SD's 4-level UNet)");
        }
        return trains;
    }

    /** How many parameters {@code method} trains in a UNet with these parameter shapes. */
    public static long count(TrainMethod method, SequencedMap<String, int[]> shapes) {
        Predicate<String> trains = selector(method, shapes.keySet());
        long n = 0;
        for (var e : shapes.entrySet()) {
            if (trains.test(e.getKey())) n += Tensor.sizeOf(e.getValue());
        }
        return n;
    }
}
