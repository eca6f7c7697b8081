package esdnative.esd;

import esdnative.cli.UserError;
import esdnative.util.Rng;

import java.util.Locale;

/**
 * How an ESD iteration picks the noise level: how many guided DDIM steps the trainable model runs from pure noise
 * to make z, and at which training timestep t_ddpm the three noise predictions are then taken (ESD-SPEC.md step 5).
 */
public enum Schedule {
    /**
     * The paper code (train-esd.py): t_enc = k uniform in [0, S); the sampler runs DDIM indices S-1 down to
     * max(k-1, 0) (51-k steps for S = 50 and k ≥ 2; all S for k ≤ 1), and t_ddpm is uniform in
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
        throw new UserError("--schedule: unknown schedule '" + text + "'; valid: paper, aligned");
    }

    /**
     * One iteration's noise levels.
     *
     * @param tEnc       the DDIM index k drawn in [0, S)
     * @param ddimSteps  how many steps of the descending DDIM schedule to run from pure noise
     * @param tDdpm      the training timestep at which e0, ep and en are evaluated
     */
    public record Plan(int tEnc, int ddimSteps, int tDdpm) {}

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
                yield new Plan(k, paperStepsRun(k, steps), rng.nextInt(lo, hi));
            }
            case ALIGNED -> new Plan(k, k, timestepsDescending[k]);
        };
    }

    /** Replays a recorded iteration: the number of DDIM steps follows from t_enc, t_ddpm is given. */
    public Plan replay(int tEnc, int tDdpm, int[] timestepsDescending) {
        int steps = timestepsDescending.length;
        if (tEnc < 0 || tEnc >= steps) throw new UserError("replay: t_enc " + tEnc + " outside [0, " + steps + ")");
        return new Plan(tEnc, this == PAPER ? paperStepsRun(tEnc, steps) : tEnc, tDdpm);
    }

    /** The paper sampler runs indices S-1 … max(k-1, 0): S - max(k-1, 0) steps. */
    static int paperStepsRun(int k, int steps) {
        return steps - Math.max(k - 1, 0);
    }
}
