package esdnative.backend.cpu;

/**
 * The complementary error function to float32 accuracy (Java has no Math.erf).
 *
 * <p>Chebyshev-fitted formula from Numerical Recipes in C, 2nd ed. (Press, Teukolsky, Vetterling, Flannery,
 * 1992), §6.2, function {@code erfcc}: fractional error below 1.2e-7 everywhere. Exact GELU is written with
 * erfc, x·Φ(x) = x/2 · erfc(-x/√2), which keeps that relative accuracy for large negative x as well, where
 * 1 + erf(x/√2) would cancel.
 */
final class Erf {
    private Erf() {}

    /** erfc(x) = 1 - erf(x), relative error < 1.2e-7. */
    static double erfc(double x) {
        double z = Math.abs(x);
        double t = 1.0 / (1.0 + 0.5 * z);
        double poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * Math.exp(-z * z + poly);
        return x >= 0 ? r : 2.0 - r;
    }

    /** The standard normal CDF Φ(x) = erfc(-x/√2)/2. */
    static double normalCdf(double x) {
        return 0.5 * erfc(-x * 0.7071067811865476);
    }
}
