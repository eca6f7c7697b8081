package esdnative.model.unet;

/**
 * How many samples a UNet has been run on: a batch-n forward counts n forwards, the backward of a batch-n forward
 * counts n backwards. The model increments it where it runs; callers take differences to price what they ran.
 */
public final class Evaluations {
    private long forwards;
    private long backwards;

    /** A copy of the counts so far, to subtract from a later one. */
    public record Count(long forwards, long backwards) {
        public Count minus(Count earlier) {
            return new Count(forwards - earlier.forwards, backwards - earlier.backwards);
        }

        /** Forward-equivalents, a backward counted as two forwards (its two GEMMs/convs per forward one). */
        public long forwardEquivalents() { return forwards + 2 * backwards; }
    }

    /** Counts a batch-{@code samples} forward (the model does as it runs one; a replayed recording of one, its caller). */
    public void addForwards(int samples) { forwards += samples; }

    void addBackwards(int samples) { backwards += samples; }

    public Count count() { return new Count(forwards, backwards); }
}
