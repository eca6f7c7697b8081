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
        // ESD-SPEC.md step 5: the paper's list [1, 21, ..., 981] loses its highest entry; for t_enc = k ≥ 1 the
        // sampler runs 50 − k steps from 961, for k = 0 all 49
        assertArrayEquals(IntStream.range(0, 50).map(i -> 1 + 20 * i).toArray(), Schedule.paperTimesteps(50, 1000));
        assertEquals(49, Schedule.paperStepsRun(0, 50));
        assertEquals(49, Schedule.paperStepsRun(1, 50));
        assertEquals(48, Schedule.paperStepsRun(2, 50));
        assertEquals(1, Schedule.paperStepsRun(49, 50));
        for (int k = 0; k < 50; k++) {
            int[] run = Schedule.PAPER.replay(k, 20 * k, DDIM50, 1000).timesteps();
            assertEquals(961, run[0]);
            // z ends at the noise level of t = 20(k−2)+1 (one DDIM step of 20 below the last timestep run)
            if (k >= 2) assertEquals(20 * (k - 2) + 1, run[run.length - 1] - 20);
        }
    }

    @Test
    void paperListHasAnExtraEntryWhenTheStepsDoNotDivideTheTrainingSteps() {
        // make_ddim_timesteps: c = 1000 // 30 = 33, range(0, 1000, 33) + 1: 31 entries up to 991
        int[] list = Schedule.paperTimesteps(30, 1000);
        assertEquals(31, list.length);
        assertEquals(991, list[30]);
        assertEquals(30, Schedule.paperStepsRun(0, list.length));
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
            assertArrayEquals(java.util.Arrays.copyOf(DDIM50, p.tEnc()), p.timesteps());
            assertEquals(DDIM50[p.tEnc()], p.tDdpm());
        }
    }

    @Test
    void replayingAnAlignedTraceOfAnotherScheduleIsRefused() {
        assertEquals(DDIM50[7], Schedule.ALIGNED.replay(7, DDIM50[7], DDIM50, 1000).tDdpm());
        // a paper-schedule t_ddpm (drawn in [140, 160) for k = 7) is not where the aligned z is
        var e = assertThrows(esdnative.util.UserError.class, () -> Schedule.ALIGNED.replay(7, 150, DDIM50, 1000));
        assertTrue(e.getMessage().contains("t_ddpm 150") && e.getMessage().contains("841"), e.getMessage());
    }

    @Test
    void unknownScheduleIsAUserError() {
        assertThrows(esdnative.util.UserError.class, () -> Schedule.parse("fast"));
    }
}
