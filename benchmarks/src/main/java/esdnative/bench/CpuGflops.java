package esdnative.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.lang.management.ManagementFactory;

/**
 * The work done and the CPU time this JVM spent on it (all its threads), summed over the measured
 * iterations: the "·gflopDone" and "·cpuSeconds" lines. gflopDone / cpuSeconds is GFLOP/s per busy core,
 * which a shared machine's load does not dilute as it does the wall-clock "·gflop" rate; times the thread
 * count, it approximates the wall-clock rate on an otherwise idle machine.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.EVENTS)
public class CpuGflops {
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    private double gflop;
    private long cpuStartNanos;

    @Setup(Level.Iteration)
    public void start() {
        gflop = 0;
        cpuStartNanos = OS.getProcessCpuTime();
    }

    void add(double work) { gflop += work; }

    public double gflopDone() { return gflop; }

    public double cpuSeconds() { return (OS.getProcessCpuTime() - cpuStartNanos) / 1e9; }
}
