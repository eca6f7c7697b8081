package esdnative.esd;

import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.unet.UNetConfig;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SequencedMap;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
        for (TrainMethod m : TrainMethod.values()) {
            assertEquals(expected.get(m), TrainedNames.count(m, shapes), m.id());
        }
    }
}
