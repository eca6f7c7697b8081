package esdnative.backend.cpu;

/**
 * torch.optim.Adam's default (single-tensor, non-fused) step, operation for operation in float32 as torch
 * 1.13's vectorised CPU kernels do it (https://pytorch.org/docs/stable/generated/torch.optim.Adam.html):
 * <pre>
 *   g = g + wd·p                       (grad.add(param, alpha=wd): fused multiply-add)
 *   m = m·β1 + (1-β1)·g                (mul_, then add_ with alpha: fused multiply-add)
 *   v = v·β2 + ((1-β2)·g)·g            (mul_, then addcmul_)
 *   denom = sqrt(v) / sqrt(1-β2^t) + eps
 *   p = p + ((-lr/(1-β1^t))·m) / denom (addcdiv_)
 * </pre>
 * Scalars are computed in double from the decimal values the user gave (Python floats in torch) and rounded
 * to float32 where torch casts them.
 */
final class AdamStep {
    private AdamStep() {}

    private static final int GRAIN = 1 << 14;

    static void apply(float[] p, int pOff, float[] g, int gOff, float[] m, int mOff, float[] v, int vOff, long n,
                      int step, float lr, float beta1, float beta2, float eps, float weightDecay) {
        if (step < 1) throw new IllegalArgumentException("Adam step counts from 1, got " + step);
        double b1 = decimal(beta1), b2 = decimal(beta2);
        double biasCorrection1 = 1 - Math.pow(b1, step);
        double biasCorrection2 = 1 - Math.pow(b2, step);
        float negStepSize = (float) (-decimal(lr) / biasCorrection1);
        float bc2Sqrt = (float) Math.sqrt(biasCorrection2);
        float b1f = (float) b1, oneMinusB1 = (float) (1 - b1), b2f = (float) b2, oneMinusB2 = (float) (1 - b2);
        float epsF = (float) decimal(eps), wd = (float) decimal(weightDecay);
        Parallel.forRanges(n, GRAIN, (s, e) -> {
            for (int i = (int) s; i < e; i++) {
                float grad = g[gOff + i];
                if (wd != 0f) grad = Math.fma(p[pOff + i], wd, grad);
                float mi = Math.fma(grad, oneMinusB1, m[mOff + i] * b1f);
                float vi = v[vOff + i] * b2f + (oneMinusB2 * grad) * grad;
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + epsF;
                m[mOff + i] = mi;
                v[vOff + i] = vi;
                p[pOff + i] = p[pOff + i] + (negStepSize * mi) / denom;
            }
        });
    }

    /** the double a user meant by a float (0.9f → 0.9), as Python would hold it */
    private static double decimal(float x) {
        return Double.parseDouble(Float.toString(x));
    }
}
