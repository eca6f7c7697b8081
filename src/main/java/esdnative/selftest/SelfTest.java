package esdnative.selftest;

import esdnative.backend.Backend;
import esdnative.selftest.OpCase.Role;
import esdnative.selftest.OpCase.TensorSpec;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Runs {@link OpCase}s: on a candidate backend against the reference (relative error ‖cand − ref‖ / ‖ref‖ over
 * every output, a second candidate run for bit-for-bit determinism, guard cells intact), or on one backend alone
 * as a sanity run (every output written, finite, guards intact).
 */
public final class SelfTest {
    /** NaN guard cells around every tensor; a distinctive payload, so that a computed NaN differs from it. */
    static final int GUARD = 67;
    static final float POISON = Float.intBitsToFloat(0x7fc0dead);

    /**
     * One line of the result table. relError and tolerance are NaN in a sanity run; determinism is "yes", "NO",
     * or "-" when not checked.
     */
    public record Row(String name, String kind, double tolerance, double relError, String worst,
                      String determinism, boolean passed, String note) {}

    private SelfTest() {}

    /** Compares {@code candidate} with {@code reference} on one case. */
    public static Row compare(OpCase c, Backend reference, Backend candidate, double tolerance, long seed) {
        Map<String, float[]> init = initialValues(c, seed);
        String kind = c.gemm() ? "gemm" : "fp32";
        Outcome ref;
        try {
            ref = execute(reference, c, init);
        } catch (RuntimeException e) {
            return new Row(c.name(), kind, tolerance, Double.NaN, "", "-", false, reference.name() + " failed: " + e);
        }
        Outcome first, second;
        try {
            first = execute(candidate, c, init);
            second = execute(candidate, c, init);
        } catch (RuntimeException e) {
            return new Row(c.name(), kind, tolerance, Double.NaN, "", "-", false, candidate.name() + " failed: " + e);
        }
        List<String> problems = new ArrayList<>(ref.problems);
        problems.addAll(first.problems);
        double worst = 0;
        String worstName = "";
        Set<String> updates = new HashSet<>();
        for (OpCase.UpdateCheck u : c.updates()) {
            updates.add(u.update());
            String problem = updateProblem(u, ref.results, first.results, tolerance);
            if (problem != null) problems.add(problem);
        }
        for (var e : ref.results.entrySet()) {
            if (updates.contains(e.getKey())) continue;
            double err = relativeError(first.results.get(e.getKey()), e.getValue());
            if (Double.isNaN(err) || err > worst) {
                worst = err;
                worstName = e.getKey();
                if (Double.isNaN(err)) break;
            }
        }
        boolean deterministic = true;
        for (var e : first.results.entrySet()) {
            deterministic &= Arrays.equals(e.getValue(), second.results.get(e.getKey()));
        }
        if (!deterministic) problems.add("two runs differ");
        boolean passed = problems.isEmpty() && !Double.isNaN(worst) && worst <= tolerance;
        return new Row(c.name(), kind, tolerance, worst, worstName, deterministic ? "yes" : "NO", passed,
                String.join("; ", problems));
    }

    /** Runs a case on one backend: passes when every output is written, finite, and no guard cell changed. */
    public static Row sanity(OpCase c, Backend backend, long seed) {
        String kind = c.gemm() ? "gemm" : "fp32";
        try {
            Outcome o = execute(backend, c, initialValues(c, seed));
            List<String> problems = new ArrayList<>(o.problems);
            for (var e : o.results.entrySet()) {
                for (float v : e.getValue()) {
                    if (!Float.isFinite(v)) {
                        problems.add("non-finite value in " + e.getKey());
                        break;
                    }
                }
            }
            return new Row(c.name(), kind, Double.NaN, Double.NaN, "", "-", problems.isEmpty(),
                    String.join("; ", problems));
        } catch (RuntimeException e) {
            return new Row(c.name(), kind, Double.NaN, Double.NaN, "", "-", false, backend.name() + " failed: " + e);
        }
    }

    /**
     * What is wrong with an optimiser update (see {@link OpCase.UpdateCheck}), or null: the well-conditioned
     * element whose difference from the reference most exceeds what it may differ by.
     */
    static String updateProblem(OpCase.UpdateCheck check, Map<String, float[]> ref, Map<String, float[]> cand,
                                double gradientTolerance) {
        float[] g = ref.get(check.gradients()), u = ref.get(check.update()), cu = cand.get(check.update());
        if (cu == null || cu.length != u.length) return check.update() + " missing";
        double sumSquares = 0;
        for (float v : g) sumSquares += (double) v * v;
        double allowedGradientError = OpCase.UpdateCheck.WELL_CONDITIONED * gradientTolerance
                * Math.sqrt(sumSquares / g.length);
        double worstRatio = 0, worstDiff = 0, worstAllowed = 0;
        int counted = 0;
        for (int i = 0; i < u.length; i++) {
            double magnitude = Math.abs(g[i]);
            if (!(magnitude >= allowedGradientError)) continue;
            counted++;
            double flank = magnitude + check.eps();
            double allowed = OpCase.UpdateCheck.UPDATE_TOLERANCE + check.eps() * allowedGradientError / (flank * flank);
            double diff = Math.abs((double) cu[i] - u[i]) / check.lr();
            if (Double.isNaN(diff)) return check.update() + ": NaN at element " + i;
            if (diff / allowed > worstRatio) {
                worstRatio = diff / allowed;
                worstDiff = diff;
                worstAllowed = allowed;
            }
        }
        if (counted == 0) return check.update() + ": no gradient is clear of zero";
        if (worstRatio > 1) {
            return String.format(Locale.ROOT, "%s differs by %.2e lr where %.2e lr is allowed (%d elements with"
                    + " |grad| >= %.1e compared)", check.update(), worstDiff, worstAllowed, counted, allowedGradientError);
        }
        return null;
    }

    /** ‖a − ref‖₂ / ‖ref‖₂ in double (the plain norm of the difference when ref is all zeros); NaN if any is. */
    static double relativeError(float[] a, float[] ref) {
        if (a == null || a.length != ref.length) return Double.NaN;
        double diff = 0, norm = 0;
        for (int i = 0; i < ref.length; i++) {
            if (Float.isNaN(a[i]) || Float.isNaN(ref[i])) return Double.NaN;
            double d = (double) a[i] - ref[i];
            diff += d * d;
            norm += (double) ref[i] * ref[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** The values every tensor starts with: random for inputs and accumulators (seeded per case), NaN for outputs. */
    static Map<String, float[]> initialValues(OpCase c, long seed) {
        SplittableRandom random = new SplittableRandom(seed ^ c.name().hashCode());
        Map<String, float[]> out = new LinkedHashMap<>();
        for (TensorSpec t : c.tensors()) {
            float[] v = new float[Math.toIntExact(t.size())];
            if (t.role() == Role.OUTPUT) {
                Arrays.fill(v, Float.NaN);
            } else {
                for (int i = 0; i < v.length; i++) v[i] = t.low() + (t.high() - t.low()) * (float) random.nextDouble();
            }
            out.put(t.name(), v);
        }
        return out;
    }

    /** What one run left: each compared tensor's values (and scalar results), and what went wrong. */
    private record Outcome(Map<String, float[]> results, List<String> problems) {}

    private static Outcome execute(Backend backend, OpCase c, Map<String, float[]> init) {
        Map<String, Tensor> buffers = new LinkedHashMap<>();
        Map<String, Tensor> views = new LinkedHashMap<>();
        for (TensorSpec t : c.tensors()) {
            float[] values = init.get(t.name());
            float[] padded = new float[values.length + 2 * GUARD];
            Arrays.fill(padded, POISON);
            System.arraycopy(values, 0, padded, GUARD, values.length);
            Tensor buffer = backend.fromHost(padded, padded.length);
            buffers.put(t.name(), buffer);
            views.put(t.name(), buffer.view(GUARD, t.shape()));
        }
        float[] scalars = c.body().run(backend, views);

        Map<String, float[]> results = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        for (TensorSpec t : c.tensors()) {
            float[] all = backend.toHost(buffers.get(t.name()));
            int n = all.length - 2 * GUARD;
            for (int i = 0; i < GUARD; i++) {
                if (Float.floatToRawIntBits(all[i]) != Float.floatToRawIntBits(POISON)
                        || Float.floatToRawIntBits(all[GUARD + n + i]) != Float.floatToRawIntBits(POISON)) {
                    problems.add(backend.name() + " wrote outside " + t.name());
                    break;
                }
            }
            if (t.role() != Role.INPUT) {
                float[] body = Arrays.copyOfRange(all, GUARD, GUARD + n);
                results.put(t.name(), body);
            } else if (!Arrays.equals(Arrays.copyOfRange(all, GUARD, GUARD + n), init.get(t.name()))) {
                problems.add(backend.name() + " changed input " + t.name());
            }
        }
        for (int i = 0; i < scalars.length; i++) results.put("result" + (scalars.length > 1 ? i : ""), new float[] {scalars[i]});
        return new Outcome(results, problems);
    }
}
