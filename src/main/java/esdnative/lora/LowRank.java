package esdnative.lora;

/** The product up·down of LoRA factors (up m×k, down k×n, row-major), summed in float64. */
public final class LowRank {
    private LowRank() {}

    /**
     * up·down as an m×n row-major array. Zeros of down are skipped, so the exact split {@code down = c·I} of a
     * full-rank module costs O(m·n), not O(m·n·k).
     */
    public static double[] product(float[] up, float[] down, int m, int k, int n) {
        if (up.length != (long) m * k || down.length != (long) k * n) {
            throw new IllegalArgumentException("factors " + up.length + " and " + down.length + " values for " + m + "×" + k + "·" + k + "×" + n);
        }
        // the non-zero columns of each row of down
        int[][] nonZero = new int[k][];
        for (int r = 0; r < k; r++) {
            int count = 0;
            for (int j = 0; j < n; j++) if (down[r * n + j] != 0) count++;
            nonZero[r] = new int[count];
            count = 0;
            for (int j = 0; j < n; j++) if (down[r * n + j] != 0) nonZero[r][count++] = j;
        }
        double[] out = new double[m * n];
        for (int i = 0; i < m; i++) {
            int row = i * n;
            for (int r = 0; r < k; r++) {
                double u = up[i * k + r];
                if (u == 0) continue;
                int dr = r * n;
                int[] cols = nonZero[r];
                if (cols.length == n) {
                    for (int j = 0; j < n; j++) out[row + j] += u * down[dr + j];
                } else {
                    for (int j : cols) out[row + j] += u * down[dr + j];
                }
            }
        }
        return out;
    }
}
