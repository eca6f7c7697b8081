package esdnative.uce;

import esdnative.backend.cpu.Parallel;

/**
 * UCE's closed form, W_new = mat1 · mat2⁻¹, for every edited module at once, in float64.
 *
 * <p>With G = λI + Σ s guide keyᵀ over all terms, mat1 = W·G, so W_new = W + W·(G − mat2)·mat2⁻¹, and in
 * G − mat2 = Σ s (guide − key) keyᵀ the preserve terms (guide = key) cancel exactly. Hence
 * W_new = W + (W·U)·Vᵀ with U = [s (guide − key)] and V = mat2⁻¹ [key], one column per erase term: two factors
 * shared by every module, and mat2 (the same for every module) is summed and solved once — a Cholesky solve, as
 * λ > 0 and scales ≥ 0 make it symmetric positive definite; no explicit inverse. With no erase term, W is returned
 * unchanged.
 */
public final class ClosedForm {
    private final int dim;
    private final double[] mat2;   // [dim, dim]
    private final int rank;        // columns of left: the erase terms, or dim when M − I is stored whole
    private final double[] left;   // [dim, rank]: U, or M − I = U·Vᵀ when that is the cheaper product
    private final double[] right;  // [rank, dim]: Vᵀ; null when left is M − I

    private ClosedForm(int dim, double[] mat2, int rank, double[] left, double[] right) {
        this.dim = dim;
        this.mat2 = mat2;
        this.rank = rank;
        this.left = left;
        this.right = right;
    }

    public static ClosedForm solve(EditTerms t) {
        int d = t.dim(), n = t.erase().size();
        double[] mat2 = mat2(t);
        double[] chol = cholesky(mat2, d);
        double[] u = new double[d * n], vt = new double[n * d];
        for (int e = 0; e < n; e++) {
            EditTerms.Term term = t.erase().get(e);
            for (int i = 0; i < d; i++) u[i * n + e] = term.scale() * (term.guide()[i] - term.key()[i]);
            System.arraycopy(solve(chol, d, term.key()), 0, vt, e * d, d);
        }
        if (2 * n <= d) return new ClosedForm(d, mat2, n, u, vt);
        // many terms: M − I = U·Vᵀ [d, d] once, then one product per module instead of two
        double[] m = new double[d * d];
        Parallel.forEach(d, (long) d * d * n, i -> {
            for (int e = 0; e < n; e++) {
                double a = u[i * n + e];
                for (int j = 0; j < d; j++) m[i * d + j] += a * vt[e * d + j];
            }
        });
        return new ClosedForm(d, mat2, d, m, null);
    }

    /** λI + Σ s key keyᵀ over every term [dim, dim] (lower triangle summed, mirrored). */
    private static double[] mat2(EditTerms t) {
        int d = t.dim();
        double[] mat2 = new double[d * d];
        int terms = t.erase().size() + t.preserve().size();
        Parallel.forEach(d, (long) d * d * terms / 2, i -> {
            mat2[i * d + i] = t.lamb();
            for (var list : java.util.List.of(t.erase(), t.preserve())) {
                for (EditTerms.Term term : list) {
                    double[] k = term.key();
                    double a = term.scale() * k[i];
                    for (int j = 0; j <= i; j++) mat2[i * d + j] += a * k[j];
                }
            }
        });
        for (int i = 0; i < d; i++) for (int j = 0; j < i; j++) mat2[j * d + i] = mat2[i * d + j];
        return mat2;
    }

    /**
     * L with L·Lᵀ = a, row-major [d, d], lower triangle; row by row, each entry one contiguous dot product of two
     * rows. Serial: d³/6 multiply-adds (75 M for SD1.x's d = 768), less than a thread dispatch per column costs.
     */
    private static double[] cholesky(double[] a, int d) {
        double[] l = new double[d * d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < i; j++) l[i * d + j] = (a[i * d + j] - dot(l, i * d, l, j * d, j)) / l[j * d + j];
            double diag = a[i * d + i] - dot(l, i * d, l, i * d, i);
            if (!(diag > 0)) throw new IllegalStateException("mat2 is not positive definite (pivot " + i + ": " + diag + ")");
            l[i * d + i] = Math.sqrt(diag);
        }
        return l;
    }

    /** x with L·Lᵀ·x = b. */
    private static double[] solve(double[] l, int d, double[] b) {
        double[] y = new double[d];
        for (int i = 0; i < d; i++) y[i] = (b[i] - dot(l, i * d, y, 0, i)) / l[i * d + i];
        double[] x = new double[d];
        for (int i = d - 1; i >= 0; i--) {   // Lᵀ·x = y, subtracting each solved x[i] times row i of L (contiguous)
            x[i] = y[i] / l[i * d + i];
            for (int k = 0; k < i; k++) y[k] -= l[i * d + k] * x[i];
        }
        return x;
    }

    /** Σ a[aOff + k]·b[bOff + k] over k < n, in four interleaved partial sums (the JIT keeps a single sum scalar). */
    private static double dot(double[] a, int aOff, double[] b, int bOff, int n) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int k = 0;
        for (; k + 3 < n; k += 4) {
            s0 += a[aOff + k] * b[bOff + k];
            s1 += a[aOff + k + 1] * b[bOff + k + 1];
            s2 += a[aOff + k + 2] * b[bOff + k + 2];
            s3 += a[aOff + k + 3] * b[bOff + k + 3];
        }
        for (; k < n; k++) s0 += a[aOff + k] * b[bOff + k];
        return (s0 + s1) + (s2 + s3);
    }

    /** The width of the text vectors: every edited weight is [rows, dim]. */
    public int dim() { return dim; }

    /** λI + Σ s key keyᵀ, [dim, dim] row-major (a copy). */
    public double[] mat2() { return mat2.clone(); }

    /** W_new for one module's weight W [rows, dim] (row-major, PyTorch's [out, in]), rounded to float32 once. */
    public float[] apply(float[] w, int rows) {
        if (w.length != (long) rows * dim) {
            throw new IllegalArgumentException(w.length + " values are not a [" + rows + ", " + dim + "] weight");
        }
        if (rank == 0) return w.clone();
        float[] out = new float[w.length];
        long work = (long) rows * dim * rank * (right == null ? 1 : 2);
        Parallel.forEach(rows, work, i -> {
            int row = i * dim;
            double[] p = new double[rank];                    // W_i · left
            for (int k = 0; k < dim; k++) {
                double wk = w[row + k];
                for (int r = 0; r < rank; r++) p[r] += wk * left[k * rank + r];
            }
            double[] delta = p;                               // (W·(M − I))_i when left is M − I
            if (right != null) {
                delta = new double[dim];                      // (W·U)_i · Vᵀ
                for (int r = 0; r < rank; r++) {
                    double pr = p[r];
                    for (int k = 0; k < dim; k++) delta[k] += pr * right[r * dim + k];
                }
            }
            for (int k = 0; k < dim; k++) out[row + k] = (float) (w[row + k] + delta[k]);
        });
        return out;
    }
}
