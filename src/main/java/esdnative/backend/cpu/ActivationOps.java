package esdnative.backend.cpu;

/**
 * Elementwise activations and their derivatives, computed in double and rounded once to float32.
 * SiLU x·σ(x); exact GELU x·Φ(x) (Φ via {@link Erf}); CLIP's quick GELU x·σ(1.702x).
 */
final class ActivationOps {
    private ActivationOps() {}

    static final double QUICK_GELU_ALPHA = 1.702;
    private static final double INV_SQRT_2PI = 0.3989422804014327;

    static double sigmoid(double x) {
        return 1.0 / (1.0 + Math.exp(-x));
    }

    static double silu(double x) {
        return x * sigmoid(x);
    }

    /** d silu / dx = σ(x) · (1 + x · (1 - σ(x))) */
    static double siluGrad(double x) {
        double s = sigmoid(x);
        return s * (1.0 + x * (1.0 - s));
    }

    static double gelu(double x) {
        return x * Erf.normalCdf(x);
    }

    /** d gelu / dx = Φ(x) + x · φ(x) */
    static double geluGrad(double x) {
        return Erf.normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    }

    static double quickGelu(double x) {
        return x * sigmoid(QUICK_GELU_ALPHA * x);
    }

    /** d/dx x·σ(ax) = σ(ax) + a·x·σ(ax)·(1 - σ(ax)) */
    static double quickGeluGrad(double x) {
        double s = sigmoid(QUICK_GELU_ALPHA * x);
        return s + QUICK_GELU_ALPHA * x * s * (1.0 - s);
    }
}
