package esdnative.esd;

import esdnative.util.Rng;

/**
 * Which trajectory and which of its points the next {@code --fast} iterations train on: a trajectory is a concept
 * and a start noise, its points the S DDIM indices in a seeded shuffled order cut to the first K (--reuse); when
 * they are used up, the trainer starts a new trajectory. This state is all a checkpoint needs: the points
 * themselves are recomputed from the start noise by the frozen model ({@link Trajectory}).
 */
public final class TrajectoryPool {
    /**
     * The fewest trajectories a {@code --fast} run trains on by default. With every point of a trajectory used, a short
     * run sees very few start noises (the toy demo's 60 iterations of 20-point trajectories: 3), and its erasure
     * generalises worse than the paper's fresh trajectory per iteration: on the toy, circle 96.9% → 15.6% from 3
     * trajectories, 6.3% from 15, 3.1% from 60 (the frozen sampler alone). Long runs are unaffected: SD's 1000
     * iterations of 50 steps still use all 50 points (20 trajectories).
     */
    public static final int MIN_TRAJECTORIES = 15;

    /**
     * {@code --reuse}'s default: all {@code ddimSteps} points of a trajectory, or fewer so that the run draws at least
     * {@link #MIN_TRAJECTORIES} trajectories (at least 1 point each).
     */
    public static int defaultReuse(int iterations, int ddimSteps) {
        return Math.max(1, Math.min(ddimSteps, iterations / MIN_TRAJECTORIES));
    }

    /**
     * @param trajectory the trajectory's number in the run, from 1
     * @param order      the DDIM indices its iterations use, in order
     * @param used       how many of them have been drawn
     */
    public record State(int trajectory, String concept, float[] start, int[] order, int used) {}

    private State state;

    /** True before the first trajectory and when the current one's points are all drawn. */
    boolean usedUp() { return state == null || state.used() == state.order().length; }

    /** Starts the next trajectory; its order is the first {@code points} of a seeded shuffle of [0, indices). */
    void next(String concept, float[] start, Rng rng, int indices, int points) {
        int[] all = new int[indices];
        for (int i = 0; i < indices; i++) all[i] = i;
        for (int i = indices - 1; i > 0; i--) { // Fisher–Yates
            int j = rng.nextInt(0, i + 1);
            int swap = all[i];
            all[i] = all[j];
            all[j] = swap;
        }
        state = new State(state == null ? 1 : state.trajectory() + 1, concept, start, java.util.Arrays.copyOf(all, points), 0);
    }

    /** The current trajectory's next DDIM index. */
    int take() {
        int k = state.order()[state.used()];
        state = new State(state.trajectory(), state.concept(), state.start(), state.order(), state.used() + 1);
        return k;
    }

    /** The current state; null before the first trajectory. */
    public State state() { return state; }

    void restore(State s) { this.state = s; }
}
