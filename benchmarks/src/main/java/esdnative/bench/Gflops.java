package esdnative.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * A JMH counter of floating-point work: each benchmark call adds its GFLOP, and JMH reports the
 * counter per second, i.e. as GFLOP/s (the "·gflop" line, in ops/s).
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class Gflops {
    public double gflop;

    @Setup(Level.Iteration)
    public void reset() { gflop = 0; }
}
