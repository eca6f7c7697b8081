package esdnative.lora;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Singular value decomposition in float64 of a row-major m×n matrix A = U·diag(s)·Vᵀ, singular values descending.
 *
 * <p>{@link #full} is one-sided Jacobi (Hestenes): rotate pairs of columns of A (of Aᵀ when m &lt; n) until all are
 * orthogonal; the column norms are the singular values. It works on A itself, never on AᵀA, so small singular values
 * keep their relative accuracy; its cost is O(min(m,n)² · max(m,n)) per sweep, a few sweeps.
 *
 * <p>{@link #truncated} finds the leading k triplets of a large matrix in a block Krylov space with a Rayleigh–Ritz
 * step: the small projected matrix Qᵀ·A is decomposed by {@link #full}. A matrix whose rank the space covers is found
 * exactly.
 */
public final class Svd {
    private Svd() {}

    /**
     * A thin decomposition with k triplets.
     *
     * @param u  m×k, row-major, orthonormal columns
     * @param s  k singular values, descending, ≥ 0
     * @param vt k×n, row-major, orthonormal rows
     */
    public record Result(int m, int n, int k, double[] u, double[] s, double[] vt) {
        /** The first {@code k} triplets. */
        public Result leading(int k) {
            if (k >= this.k) return this;
            double[] u2 = new double[m * k];
            for (int i = 0; i < m; i++) System.arraycopy(u, i * this.k, u2, i * k, k);
            return new Result(m, n, k, u2, Arrays.copyOf(s, k), Arrays.copyOf(vt, k * n));
        }
    }

    private static final int MAX_SWEEPS = 60;

    /** All min(m,n) triplets by one-sided Jacobi. */
    public static Result full(double[] a, int m, int n) {
        checkSize(a, m, n);
        if (m >= n) return jacobi(a, m, n, false);
        Result t = jacobi(a, m, n, true);   // decomposed Aᵀ = U'·S·V'ᵀ, so A = V'·S·U'ᵀ
        return new Result(m, n, t.k, transpose(t.vt, t.k, m), t.s, transpose(t.u, n, t.k));
    }

    /**
     * The leading min(k, m, n) triplets. Small problems, and those where k is near min(m,n), go to {@link #full}; the
     * others to a block Krylov space (Musco &amp; Musco 2015): Q spans A·Ω, (A·Aᵀ)·A·Ω, (A·Aᵀ)²·A·Ω, ... from a seeded
     * random Ω with k columns (deterministic), and the Ritz triplets of Qᵀ·A come from {@link #full}. The space grows
     * until the energy the leading k capture stops growing, or it reaches {@code max(16k, 128)} columns. Krylov
     * spaces converge far faster than plain subspace iteration where the spectrum has no gap after the k-th value
     * (the usual case for an ESD ΔW).
     */
    public static Result truncated(double[] a, int m, int n, int k) {
        checkSize(a, m, n);
        int small = Math.min(m, n);
        if (k < 1) throw new IllegalArgumentException("rank " + k + " < 1");
        if (2 * k + 8 >= small || (long) small * small <= 64 * 64) return full(a, m, n).leading(k);
        int cap = Math.min(small, Math.max(16 * k, 128));
        SplittableRandom rng = new SplittableRandom(0x5bd1e995L);
        double[] omega = new double[n * k];
        for (int i = 0; i < omega.length; i++) omega[i] = gaussian(rng);
        double[] basis = new double[m * cap];   // Q, m×cap row-major; its first `dim` columns are in use
        double[] block = multiply(a, m, n, omega, k);
        int dim = 0;
        Result best = null;
        double energy = -1;
        while (true) {
            int add = Math.min(k, cap - dim);
            dim = append(basis, m, cap, dim, block, k, add, rng);
            boolean full = dim == cap;
            if (full || (dim / k) % 8 == 0) {
                // Rayleigh–Ritz: Qᵀ·A = Ub·S·Vᵀ, so A ≈ (Q·Ub)·S·Vᵀ
                double[] q = columns(basis, m, cap, dim);
                double[] bt = multiplyTransposed(a, m, n, q, dim);   // Aᵀ·Q = (Qᵀ·A)ᵀ, n×dim
                Result ritz = full(transpose(bt, n, dim), dim, n);
                double e = 0;
                for (int i = 0; i < k; i++) e += ritz.s[i] * ritz.s[i];
                best = new Result(m, n, dim, multiply(q, m, dim, ritz.u, dim), ritz.s, ritz.vt).leading(k);
                if (full || e <= energy * (1 + 1e-12)) return best;   // Ritz values only grow: converged
                energy = e;
            }
            // the next block: A·Aᵀ applied to the last one
            double[] last = new double[m * add];
            for (int i = 0; i < m; i++) System.arraycopy(basis, i * cap + dim - add, last, i * add, add);
            block = multiply(a, m, n, multiplyTransposed(a, m, n, last, add), add);
        }
    }

    /**
     * Orthogonalises {@code add} columns of {@code block} (m×width) against Q's first {@code dim} columns and each
     * other (Gram–Schmidt, twice), stores them as Q's next columns and returns the new column count. A column that
     * vanishes (the space is exhausted) is replaced by a random one.
     */
    private static int append(double[] q, int m, int cap, int dim, double[] block, int width, int add, SplittableRandom rng) {
        for (int c = 0; c < add; c++) {
            double[] x = new double[m];
            for (int i = 0; i < m; i++) x[i] = block[i * width + c];
            double before = Math.sqrt(dot(x, x));
            for (int attempt = 0; ; attempt++) {
                for (int pass = 0; pass < 2; pass++) {
                    for (int o = 0; o < dim; o++) {
                        double d = 0;
                        for (int i = 0; i < m; i++) d += q[i * cap + o] * x[i];
                        for (int i = 0; i < m; i++) x[i] -= d * q[i * cap + o];
                    }
                }
                double norm = Math.sqrt(dot(x, x));
                if (norm > 1e-12 * before && norm > 0) {
                    for (int i = 0; i < m; i++) q[i * cap + dim] = x[i] / norm;
                    dim++;
                    break;
                }
                for (int i = 0; i < m; i++) x[i] = gaussian(rng);
                before = Math.sqrt(dot(x, x));
            }
        }
        return dim;
    }

    /** The first {@code dim} columns of a rows×cap row-major matrix. */
    private static double[] columns(double[] x, int rows, int cap, int dim) {
        double[] out = new double[rows * dim];
        for (int i = 0; i < rows; i++) System.arraycopy(x, i * cap, out, i * dim, dim);
        return out;
    }

    // ---- one-sided Jacobi ----------------------------------------------------------------------------------

    /** Jacobi on the columns of A (transposed: on the columns of Aᵀ, i.e. the rows of A). */
    private static Result jacobi(double[] a, int m, int n, boolean transposed) {
        int rows = transposed ? n : m, cols = transposed ? m : n;   // the matrix worked on is rows×cols, rows ≥ cols
        double[][] c = new double[cols][rows];                       // its columns, contiguous
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                if (transposed) c[i][j] = a[i * n + j];
                else c[j][i] = a[i * n + j];
            }
        }
        double[][] v = new double[cols][cols];   // accumulated rotations; column j of V is v[j]
        for (int j = 0; j < cols; j++) v[j][j] = 1;
        double eps = 1e-15;
        for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
            boolean rotated = false;
            for (int p = 0; p < cols - 1; p++) {
                for (int q = p + 1; q < cols; q++) {
                    double[] cp = c[p], cq = c[q];
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < rows; i++) {
                        alpha += cp[i] * cp[i];
                        beta += cq[i] * cq[i];
                        gamma += cp[i] * cq[i];
                    }
                    if (gamma == 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
                    rotated = true;
                    // the rotation that zeroes the off-diagonal of the 2×2 Gram block [[alpha, gamma], [gamma, beta]]
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.signum(zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    if (zeta == 0) t = 1;
                    double cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
                    rotate(cp, cq, cs, sn);
                    rotate(v[p], v[q], cs, sn);
                }
            }
            if (!rotated) break;
        }
        double[] s = new double[cols];
        for (int j = 0; j < cols; j++) s[j] = Math.sqrt(dot(c[j], c[j]));
        Integer[] order = new Integer[cols];
        for (int j = 0; j < cols; j++) order[j] = j;
        Arrays.sort(order, (x, y) -> Double.compare(s[y], s[x]));
        // U = columns / s (rows×cols), Vᵀ = rows of the sorted V (cols×cols)
        double[] u = new double[rows * cols], vt = new double[cols * cols], sorted = new double[cols];
        double tiny = (s[order[0]] == 0 ? 1 : s[order[0]]) * 1e-300;
        boolean[] missing = new boolean[cols];
        for (int r = 0; r < cols; r++) {
            int j = order[r];
            sorted[r] = s[j];
            if (s[j] > tiny) {
                for (int i = 0; i < rows; i++) u[i * cols + r] = c[j][i] / s[j];
            } else {
                missing[r] = true;   // a zero singular value: any unit vector orthogonal to the others will do
            }
            System.arraycopy(v[j], 0, vt, r * cols, cols);
        }
        completeOrthonormal(u, rows, cols, missing);
        return new Result(rows, cols, cols, u, sorted, vt);
    }

    private static void rotate(double[] x, double[] y, double c, double s) {
        for (int i = 0; i < x.length; i++) {
            double xi = x[i], yi = y[i];
            x[i] = c * xi - s * yi;
            y[i] = s * xi + c * yi;
        }
    }

    /** Fills the missing columns of U (rows×cols) with unit vectors orthogonal to all others (from the standard basis). */
    private static void completeOrthonormal(double[] u, int rows, int cols, boolean[] missing) {
        int basis = 0;
        for (int r = 0; r < cols; r++) {
            if (!missing[r]) continue;
            while (true) {
                double[] x = new double[rows];
                x[basis++ % rows] = 1;
                for (int pass = 0; pass < 2; pass++) {
                    for (int o = 0; o < cols; o++) {
                        if (o == r || (missing[o] && o > r)) continue;
                        double d = 0;
                        for (int i = 0; i < rows; i++) d += u[i * cols + o] * x[i];
                        for (int i = 0; i < rows; i++) x[i] -= d * u[i * cols + o];
                    }
                }
                double norm = Math.sqrt(dot(x, x));
                if (norm > 0.5) {
                    for (int i = 0; i < rows; i++) u[i * cols + r] = x[i] / norm;
                    break;
                }
            }
        }
    }

    // ---- dense helpers (row-major) -------------------------------------------------------------------------

    /** A (m×n) · B (n×p). */
    static double[] multiply(double[] a, int m, int n, double[] b, int p) {
        double[] out = new double[m * p];
        for (int i = 0; i < m; i++) {
            for (int l = 0; l < n; l++) {
                double ail = a[i * n + l];
                if (ail == 0) continue;
                int bo = l * p, oo = i * p;
                for (int j = 0; j < p; j++) out[oo + j] += ail * b[bo + j];
            }
        }
        return out;
    }

    /** Aᵀ · B, A m×n, B m×p → n×p. */
    static double[] multiplyTransposed(double[] a, int m, int n, double[] b, int p) {
        double[] out = new double[n * p];
        for (int i = 0; i < m; i++) {
            for (int l = 0; l < n; l++) {
                double ail = a[i * n + l];
                if (ail == 0) continue;
                int bo = i * p, oo = l * p;
                for (int j = 0; j < p; j++) out[oo + j] += ail * b[bo + j];
            }
        }
        return out;
    }

    static double[] transpose(double[] a, int m, int n) {
        double[] t = new double[m * n];
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
        return t;
    }

    private static double dot(double[] x, double[] y) {
        double s = 0;
        for (int i = 0; i < x.length; i++) s += x[i] * y[i];
        return s;
    }

    private static double gaussian(SplittableRandom rng) {
        // Box–Muller; one of the pair is enough here
        double u1 = rng.nextDouble(), u2 = rng.nextDouble();
        return Math.sqrt(-2 * Math.log1p(-u1)) * Math.cos(2 * Math.PI * u2);
    }

    private static void checkSize(double[] a, int m, int n) {
        if (m < 1 || n < 1 || a.length != (long) m * n) {
            throw new IllegalArgumentException(a.length + " values for a " + m + "×" + n + " matrix");
        }
    }
}
