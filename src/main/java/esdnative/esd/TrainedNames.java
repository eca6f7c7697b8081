package esdnative.esd;

import esdnative.tensor.Tensor;
import esdnative.weights.CompVisNames;

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

    /** Accepts the diffusers UNet parameter names that {@code method} trains, for a UNet with these parameters. */
    public static Predicate<String> selector(TrainMethod method, Set<String> unetNames) {
        CompVisNames table = CompVisNames.of(CompVisNames.Topology.fromDiffusers(unetNames, List.of()));
        String prefix = CompVisNames.Component.UNET.compVisPrefix();
        return name -> {
            String compVis = table.toCompVis(CompVisNames.Component.UNET, name);
            if (compVis == null) throw new IllegalStateException("no CompVis name for UNet parameter " + name);
            return method.trains(compVis.substring(prefix.length()));
        };
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
