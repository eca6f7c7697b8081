package esdnative.esd;

import esdnative.util.Rng;
import org.junit.jupiter.api.Test;

import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class ScheduleTest {
    // the SD1.4 DDIM schedule for 50 steps: 981, 961, ..., 1
    private static final int[] DDIM50 = IntStream.range(0, 50).map(i -> 981 - 20 * i).toArray();

    @Test
    void paperScheduleMatchesTheSpec() {
        // ESD-SPEC.md: for t_enc = k ≥ 2 the paper code runs 51-k steps; for k in {0, 1} all 50
        assertEquals(50, Schedule.paperStepsRun(0, 50));
        assertEquals(50, Schedule.paperStepsRun(1, 50));
        assertEquals(49, Schedule.paperStepsRun(2, 50));
        assertEquals(2, Schedule.paperStepsRun(49, 50));
        // after 51-k steps z is at the noise level of t = 20(k-2)+1: the timestep after the last one run
        for (int k = 2; k < 50; k++) {
            int stepsRun = Schedule.paperStepsRun(k, 50);
            assertEquals(20 * (k - 2) + 1, DDIM50[stepsRun]);
        }
    }

    @Test
    void paperTimestepIsDrawnInItsBucket() {
        Rng rng = new Rng(7);
        for (int i = 0; i < 2000; i++) {
            Schedule.Plan p = Schedule.PAPER.draw(rng, DDIM50, 1000);
            assertTrue(p.tEnc() >= 0 && p.tEnc() < 50);
            assertTrue(p.tDdpm() >= 20 * p.tEnc() && p.tDdpm() <= 20 * p.tEnc() + 19, p.toString());
            assertEquals(Schedule.paperStepsRun(p.tEnc(), 50), p.ddimSteps());
        }
    }

    @Test
    void alignedEvaluatesWhereSamplingStopped() {
        Rng rng = new Rng(3);
        for (int i = 0; i < 500; i++) {
            Schedule.Plan p = Schedule.ALIGNED.draw(rng, DDIM50, 1000);
            assertEquals(p.tEnc(), p.ddimSteps());
            assertEquals(DDIM50[p.tEnc()], p.tDdpm());
        }
    }

    @Test
    void unknownScheduleIsAUserError() {
        assertThrows(esdnative.cli.UserError.class, () -> Schedule.parse("fast"));
    }
}
