package esdnative.esd;

import esdnative.util.UserError;
import esdnative.util.Rng;

import java.util.Arrays;
import java.util.Locale;

/**
 * How an ESD iteration picks the noise level: which guided DDIM steps the sampler runs from pure noise to make z,
 * and at which training timestep t_ddpm the three noise predictions are then taken (ESD-SPEC.md step 5).
 */
public enum Schedule {
    /**
     * The paper code (train-esd.py with its ddim.py): t_enc = k uniform in [0, S); the sampler walks the paper's own
     * DDIM list ({@link #paperTimesteps}) with its highest entry dropped (t_start = −1), from the next-highest down
     * to index max(k−1, 0) ({@link #paperStepsRun} steps), and t_ddpm is uniform in
     * [round(k/S·1000), round((k+1)/S·1000)). So z is about two DDIM steps less noisy than t_ddpm: a quirk kept
     * on purpose, for faithfulness.
     */
    PAPER("paper"),
    /**
     * As the 2025 code (esd_sd.py): k uniform in [0, S); run exactly k DDIM steps from noise, then evaluate at the
     * DDIM timestep z is at (timesteps[k] of the descending schedule), so z and t_ddpm agree.
     */
    ALIGNED("aligned");

    private final String id;

    Schedule(String id) { this.id = id; }

    public String id() { return id; }

    public static Schedule parse(String text) {
        for (Schedule s : values()) if (s.id.equals(text.trim().toLowerCase(Locale.ROOT))) return s;
        throw new UserError("unknown schedule '" + text + "'; valid: paper, aligned");
    }

    /**
     * One iteration's noise levels.
     *
     * @param tEnc       the DDIM index k drawn in [0, S)
     * @param timesteps  the DDIM timesteps the sampler runs from pure noise, in order (its length: the steps run)
     * @param tDdpm      the training timestep at which e0, ep and en are evaluated
     */
    public record Plan(int tEnc, int[] timesteps, int tDdpm) {
        /** How many guided DDIM steps sampling z takes. */
        public int ddimSteps() { return timesteps.length; }
    }

    /**
     * Draws an iteration's plan.
     *
     * @param timestepsDescending the sampler's DDIM timesteps, first to last (e.g. 981, 961, ..., 1)
     * @param trainSteps          the scheduler's num_train_timesteps (1000)
     */
    public Plan draw(Rng rng, int[] timestepsDescending, int trainSteps) {
        int steps = timestepsDescending.length;
        int k = rng.nextInt(0, steps);
        return switch (this) {
            case PAPER -> {
                int lo = (int) Math.rint((double) k / steps * trainSteps);   // python round(): half to even
                int hi = (int) Math.rint((double) (k + 1) / steps * trainSteps);
                yield paperPlan(k, rng.nextInt(lo, hi), steps, trainSteps);
            }
            case ALIGNED -> alignedPlan(k, timestepsDescending);
        };
    }

    /**
     * Replays a recorded iteration: the timesteps sampled follow from t_enc; t_ddpm is given, and for the aligned
     * schedule must be the DDIM timestep z is at (a trace of another schedule or step count is refused).
     */
    public Plan replay(int tEnc, int tDdpm, int[] timestepsDescending, int trainSteps) {
        int steps = timestepsDescending.length;
        if (tEnc < 0 || tEnc >= steps) throw new UserError("replay: t_enc " + tEnc + " outside [0, " + steps + ")");
        if (this == PAPER) return paperPlan(tEnc, tDdpm, steps, trainSteps);
        Plan aligned = alignedPlan(tEnc, timestepsDescending);
        if (aligned.tDdpm() != tDdpm) {
            throw new UserError("replay: t_ddpm " + tDdpm + " disagrees with the aligned schedule, which evaluates t_enc "
                    + tEnc + " at DDIM timestep " + aligned.tDdpm() + " (" + steps + " steps); was the trace recorded "
                    + "with the paper schedule or another number of DDIM steps?");
        }
        return aligned;
    }

    private static Plan alignedPlan(int k, int[] timestepsDescending) {
        return new Plan(k, Arrays.copyOf(timestepsDescending, k), timestepsDescending[k]);
    }

    private static Plan paperPlan(int k, int tDdpm, int steps, int trainSteps) {
        int[] list = paperTimesteps(steps, trainSteps);
        // descending, the highest entry dropped (timesteps[:-1] of the ascending list), then the first steps run
        int[] run = new int[paperStepsRun(k, list.length)];
        for (int i = 0; i < run.length; i++) run[i] = list[list.length - 2 - i];
        return new Plan(k, run, tDdpm);
    }

    /**
     * The paper code's make_ddim_timesteps('uniform', S, T), ascending: c = T // S, range(0, T, c) + 1. It has
     * ceil(T / c) entries: S when S divides T, more otherwise (31 for S = 30).
     */
    static int[] paperTimesteps(int steps, int trainSteps) {
        int c = trainSteps / steps;
        int[] list = new int[(trainSteps + c - 1) / c];
        for (int i = 0; i < list.length; i++) list[i] = i * c + 1;
        return list;
    }

    /**
     * Steps the paper sampler runs for t_enc = k over a list of {@code listLength} entries: its loop visits
     * index total−1 … 0 (total = listLength − 1, the highest entry dropped) and breaks after index k−1, so
     * total − max(k−1, 0) steps (with 50 steps: 49 for k = 0, 50 − k for k ≥ 1).
     */
    static int paperStepsRun(int k, int listLength) {
        return listLength - 1 - Math.max(k - 1, 0);
    }
}
