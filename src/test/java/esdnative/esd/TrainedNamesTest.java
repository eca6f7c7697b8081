package esdnative.esd;

import esdnative.util.UserError;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import esdnative.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

class TrainedNamesTest {
    /** ESD-SPEC.md's table: parameters each method trains in SD1.4 (computed from the config, nothing allocated). */
    @Test
    void sd14CountsPerMethodAreThoseOfTheSpec() {
        SequencedMap<String, int[]> shapes = UNet2DConditionModel.parameterShapes(UNetConfig.sd14());
        Map<TrainMethod, Long> expected = Map.of(
                TrainMethod.NOXATTN, 813_495_680L,
                TrainMethod.XATTN, 43_962_560L,
                TrainMethod.SELFATTN, 49_574_080L,
                TrainMethod.FULL, 859_520_964L,
                TrainMethod.NOTIME, 857_458_240L,
                TrainMethod.XLAYER, 3_605_760L,
                TrainMethod.SELFLAYER, 8_193_920L,
                TrainMethod.XATTN_STRICT, 19_169_280L);
        expected.forEach((m, count) -> assertEquals(count, TrainedNames.count(m, shapes), m.id()));
    }

    /**
     * The 2025 esd_sd.py's sets, derived here its own way: it walks the diffusers modules and takes the parameters
     * of every Linear and Conv2d (those whose weight has rank 2 or 4; norms have rank 1), esd-u those whose module
     * name lacks "attn2". Checked on SD1.4 and on the SD2-style tiny-sd2-a (linear projections).
     */
    @Test
    void the2025SetsAreEsdSdPysLinearAndConvModules() {
        List<SequencedMap<String, int[]>> unets = List.of(UNet2DConditionModel.parameterShapes(UNetConfig.sd14()),
                UNet2DConditionModel.parameterShapes(UNetConfig.fromJson(Fixtures.path("tiny-sd2-a/unet/config.json"))));
        for (SequencedMap<String, int[]> shapes : unets) {
            Set<String> linearOrConv = shapes.keySet().stream()
                    .filter(n -> shapes.get(module(n) + ".weight").length >= 2).collect(Collectors.toCollection(TreeSet::new));
            Set<String> esdU = linearOrConv.stream().filter(n -> !module(n).contains("attn2"))
                    .collect(Collectors.toCollection(TreeSet::new));
            assertEquals(esdU, selected(TrainMethod.ESD_U_2025, shapes));
            assertEquals(linearOrConv, selected(TrainMethod.ESD_ALL_2025, shapes));

            // against the paper's ESD-u: conv_out and the time embedding added, the norms left
            Set<String> added = new TreeSet<>(esdU);
            added.removeAll(selected(TrainMethod.NOXATTN, shapes));
            assertEquals(Set.of("conv_out.bias", "conv_out.weight", "time_embedding.linear_1.bias",
                    "time_embedding.linear_1.weight", "time_embedding.linear_2.bias", "time_embedding.linear_2.weight"), added);
            Set<String> left = selected(TrainMethod.NOXATTN, shapes);
            left.removeAll(esdU);
            assertFalse(left.isEmpty());
            for (String n : left) assertEquals(1, shapes.get(module(n) + ".weight").length, n + " is no norm");
        }
    }

    /** A method that selects nothing is refused with one message, whoever asks (training or --dry-run). */
    @Test
    void aMethodThatSelectsNothingIsAUserError() {
        SequencedMap<String, int[]> tiny = UNet2DConditionModel.parameterShapes(UNetConfig.fromJson(Fixtures.path("tiny-sd-a/unet/config.json")));
        UserError e = assertThrows(UserError.class, () -> TrainedNames.count(TrainMethod.XLAYER, tiny));
        // the core's words; the command puts "--method xlayer" in front (TrainCommandTest's dry-run test)
        assertEquals("selects no parameter of this UNet (its rules name blocks of SD's 4-level UNet)", e.getMessage());
    }

    private static Set<String> selected(TrainMethod m, SequencedMap<String, int[]> shapes) {
        Predicate<String> trains = TrainedNames.selector(m, shapes.keySet());
        return shapes.keySet().stream().filter(trains).collect(Collectors.toCollection(TreeSet::new));
    }

    /** The module a parameter belongs to: its name without ".weight" or ".bias". */
    private static String module(String parameter) {
        return parameter.substring(0, parameter.lastIndexOf('.'));
    }
}
