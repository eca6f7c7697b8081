package esdnative.esd;

import esdnative.model.unet.Evaluations;
import esdnative.util.ProgressBar;
import esdnative.util.UserError;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * One ESD training run of an {@link EsdTrainer}: its iterations from where the trainer stands (1, or a restored
 * checkpoint's) to the settings' last, each drawn by the trainer or replayed from a trace; what the run keeps of
 * them (trace records, the JSONL log, progress); its checkpoints (every N iterations, on Ctrl-C, and the finished
 * training until its output is complete); and the stop signal (Ctrl-C). The train command, the toy demo and the
 * benchmark iterate through it. Configure with the {@code ...To}/{@code ...From} methods; by default a run keeps
 * nothing and reports nothing.
 *
 * <pre>{@code
 * try (EsdRun run = new EsdRun(trainer).checkpointTo(file, 500).logTo(log).reportTo(EsdRun.Progress.bar(err))) {
 *     if (!run.train()) return;                  // Ctrl-C: the checkpoint is saved
 *     if (!run.saveFinished(note)) return;       // Ctrl-C after the last iteration
 *     write(...);
 *     run.outputWritten();                       // the checkpoint is removed
 * }
 * }</pre>
 */
public final class EsdRun implements AutoCloseable {
    /** What a run shows while it goes; every method is optional. */
    public interface Progress {
        /** Before the first iteration of this run; {@code total}: the settings' iterations. */
        default void started(int total) {}

        /**
         * After each iteration, once it is recorded; {@code done}: the iterations this run has completed,
         * {@code cost}: the UNet evaluations they ran.
         */
        default void iteration(EsdTrainer.Iteration it, int done, Evaluations.Count cost) {}

        /** After the last iteration (not after Ctrl-C). */
        default void finished(int done, double seconds, Evaluations.Count cost) {}

        /**
         * The train command's display: a progress line ("[12/1000] loss 0.012345 | UNet 53 fwd 1 bwd, mean 55.0
         * fwd-eq/it | 0.50 it/s | ETA ..."), then the run's time and UNet evaluations.
         */
        static Progress bar(PrintStream out) {
            return new Progress() {
                private ProgressBar bar;

                @Override
                public void started(int total) { bar = new ProgressBar(out, total); }

                @Override
                public void iteration(EsdTrainer.Iteration it, int done, Evaluations.Count cost) {
                    bar.update(it.index(), done, String.format(Locale.ROOT, "loss %.6f | UNet %d fwd %d bwd, mean %.1f fwd-eq/it",
                            it.loss(), it.evaluations().forwards(), it.evaluations().backwards(),
                            cost.forwardEquivalents() / (double) done));
                }

                @Override
                public void finished(int done, double seconds, Evaluations.Count cost) {
                    out.printf(Locale.ROOT, "%d iterations in %.1f s; UNet evaluations %d forwards, %d backwards "
                            + "(%.1f forward-equivalents per iteration, a backward counted as 2)%n", done, seconds,
                            cost.forwards(), cost.backwards(), cost.forwardEquivalents() / (double) Math.max(done, 1));
                }
            };
        }
    }

    private final EsdTrainer trainer;
    private Path checkpoint;
    private int saveEvery;
    private Path log;
    private Path traceDir;
    private Path replayDir;
    private Progress progress = new Progress() {};
    private final Evaluations.Count before;   // the UNet's count when the run began
    private StopSignal stop;   // installed by train() when the run keeps a checkpoint

    public EsdRun(EsdTrainer trainer) {
        this.trainer = trainer;
        this.before = trainer.unet().evaluations().count();
    }

    /**
     * Keep a resumable checkpoint in {@code file}: every {@code every} iterations (0: never), on Ctrl-C (which
     * this run then catches), and the finished training until its output is written.
     */
    public EsdRun checkpointTo(Path file, int every) {
        this.checkpoint = file;
        this.saveEvery = every;
        return this;
    }

    /** Append one JSON line per iteration to {@code file} ({@link TrainLog}); null: no log. */
    public EsdRun logTo(Path file) {
        this.log = file;
        return this;
    }

    /** Write each iteration's {@link Trace} records into {@code dir}; null: none. */
    public EsdRun traceTo(Path dir) {
        this.traceDir = dir;
        return this;
    }

    /** Take each iteration's choices from the trace in {@code dir} instead of drawing them; null: draw them. */
    public EsdRun replayFrom(Path dir) {
        this.replayDir = dir;
        return this;
    }

    public EsdRun reportTo(Progress p) {
        this.progress = p;
        return this;
    }

    public EsdTrainer trainer() { return trainer; }

    /** The UNet evaluations this run's iterations ran so far (counted by the model). */
    public Evaluations.Count evaluations() { return trainer.unet().evaluations().count().minus(before); }

    /**
     * The remaining iterations. Stops at Ctrl-C after saving a checkpoint (returns false); a non-finite loss (NaN
     * weights in the input, or a learning rate or guidance that made them overflow) stops the run without saving:
     * the last checkpoint written, if any, is the last good state.
     *
     * @return true when the settings' last iteration is done
     */
    public boolean train() {
        if (log != null) TrainLog.startAt(log, trainer.completed());
        if (checkpoint != null) stop = StopSignal.install();
        int total = trainer.settings().iterations();
        int first = trainer.completed() + 1;
        long started = System.nanoTime();
        progress.started(total);
        for (int i = first; i <= total; i++) {
            EsdTrainer.Iteration it = step(replayDir != null ? Trace.read(replayDir, i, trainer) : trainer.draw());
            if (!Float.isFinite(it.loss())) {
                throw new UserError(String.format(Locale.ROOT, "iteration %d: the loss is %s: the weights no longer hold "
                        + "finite values (input weights that are NaN, or the learning rate %s too large); stopped without "
                        + "saving%s", i, it.loss(), trainer.settings().lr(), checkpoint != null && Files.exists(checkpoint)
                        ? "; the last good state is in " + checkpoint : ""));
            }
            progress.iteration(it, i - first + 1, evaluations());
            if (stop != null && stop.requested()) {
                Checkpoint.save(checkpoint, trainer);
                return false;
            }
            if (saveEvery > 0 && i % saveEvery == 0 && i < total) Checkpoint.save(checkpoint, trainer);
        }
        progress.finished(total - first + 1, (System.nanoTime() - started) / 1e9, evaluations());
        return true;
    }

    /** One iteration of the given choices, recorded in the run's trace and log (as {@link #train} records each). */
    public EsdTrainer.Iteration step(EsdTrainer.Draw draw) {
        EsdTrainer.Iteration it = trainer.step(draw);
        if (traceDir != null) Trace.write(traceDir, it, trainer.latentShape());
        if (log != null) TrainLog.append(log, it);
        return it;
    }

    /**
     * After {@link #train}: saves the finished training in the checkpoint, which is kept until the output is
     * complete ({@link #outputWritten}). From now on Ctrl-C prints {@code note} (where the training is and how to
     * write it) and lets the JVM exit.
     *
     * @return false when Ctrl-C came after the last iteration, before the output was begun
     */
    public boolean saveFinished(String note) {
        if (stop == null) throw new IllegalStateException("saveFinished needs a checkpointed run that has trained");
        Checkpoint.save(checkpoint, trainer);
        return stop.writing(note);
    }

    /** The output is complete: releases the stop signal and removes the checkpoint. */
    public void outputWritten() {
        close();
        try {
            Files.deleteIfExists(checkpoint);
        } catch (IOException e) {
            throw new UserError("cannot remove the checkpoint: " + e.getMessage(), e);
        }
    }

    /** Releases the stop signal: a Ctrl-C that waits for the checkpoint goes on, or the signal is removed. */
    @Override
    public void close() {
        if (stop != null) {
            stop.release();
            stop = null;
        }
    }
}
