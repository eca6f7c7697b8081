package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Backward ops take null for gradients that are not wanted; the ones that are wanted come out bit for bit as
 * when every gradient is requested.
 */
class OptionalGradientsTest {

    @Test
    void convolution() {
        OpCheck t = new OpCheck(41);
        Conv2dShape sh = new Conv2dShape(2, 3, 5, 6, 4, 3, 3, 1, 1);
        Tensor x = t.tensor(t.randn(2 * 3 * 30)), dy = t.tensor(t.randn(2 * 4 * 30));
        float[] w0 = t.randn(4 * 3 * 9), b0 = t.randn(4);
        Tensor dwAll = t.tensor(w0.clone()), dbAll = t.tensor(b0.clone());
        t.cpu.conv2dBackwardWeight(dwAll, dbAll, dy, x, sh);
        Tensor dwOnly = t.tensor(w0.clone()), dbOnly = t.tensor(b0.clone());
        t.cpu.conv2dBackwardWeight(dwOnly, null, dy, x, sh);
        t.cpu.conv2dBackwardWeight(null, dbOnly, dy, x, sh);
        assertArrayEquals(t.host(dwAll), t.host(dwOnly));
        assertArrayEquals(t.host(dbAll), t.host(dbOnly));
    }

    @Test
    void norms() {
        OpCheck t = new OpCheck(42);
        int n = 2, c = 4, hw = 6, groups = 2;
        Tensor x = t.tensor(t.randn(n * c * hw)), gamma = t.tensor(t.randn(c)), beta = t.tensor(t.randn(c));
        Tensor y = t.tensor(new float[n * c * hw]), mean = t.tensor(new float[n * groups]), rstd = t.tensor(new float[n * groups]);
        Tensor dy = t.tensor(t.randn(n * c * hw));
        t.cpu.groupNorm(y, mean, rstd, x, gamma, beta, n, c, hw, groups, 1e-5f);
        float[] dx0 = t.randn(n * c * hw), dg0 = t.randn(c), db0 = t.randn(c);
        Tensor dxAll = t.tensor(dx0.clone()), dgAll = t.tensor(dg0.clone()), dbAll = t.tensor(db0.clone());
        t.cpu.groupNormBackward(dxAll, dgAll, dbAll, dy, x, mean, rstd, gamma, n, c, hw, groups);
        Tensor dxOnly = t.tensor(dx0.clone()), dgOnly = t.tensor(dg0.clone()), dbOnly = t.tensor(db0.clone());
        t.cpu.groupNormBackward(dxOnly, null, null, dy, x, mean, rstd, gamma, n, c, hw, groups);
        t.cpu.groupNormBackward(null, dgOnly, null, dy, x, mean, rstd, gamma, n, c, hw, groups);
        t.cpu.groupNormBackward(null, null, dbOnly, dy, x, mean, rstd, gamma, n, c, hw, groups);
        assertArrayEquals(t.host(dxAll), t.host(dxOnly));
        assertArrayEquals(t.host(dgAll), t.host(dgOnly));
        assertArrayEquals(t.host(dbAll), t.host(dbOnly));

        int rows = 3, cols = 8;
        Tensor lx = t.tensor(t.randn(rows * cols)), lg = t.tensor(t.randn(cols)), lb = t.tensor(t.randn(cols));
        Tensor ly = t.tensor(new float[rows * cols]), lm = t.tensor(new float[rows]), lr = t.tensor(new float[rows]);
        Tensor ldy = t.tensor(t.randn(rows * cols));
        t.cpu.layerNorm(ly, lm, lr, lx, lg, lb, rows, cols, 1e-5f);
        float[] ldx0 = t.randn(rows * cols), ldg0 = t.randn(cols);
        Tensor ldxAll = t.tensor(ldx0.clone()), ldgAll = t.tensor(ldg0.clone());
        t.cpu.layerNormBackward(ldxAll, ldgAll, t.tensor(new float[cols]), ldy, lx, lm, lr, lg, rows, cols);
        Tensor ldxOnly = t.tensor(ldx0.clone()), ldgOnly = t.tensor(ldg0.clone());
        t.cpu.layerNormBackward(ldxOnly, null, null, ldy, lx, lm, lr, lg, rows, cols);
        t.cpu.layerNormBackward(null, ldgOnly, null, ldy, lx, lm, lr, lg, rows, cols);
        assertArrayEquals(t.host(ldxAll), t.host(ldxOnly));
        assertArrayEquals(t.host(ldgAll), t.host(ldgOnly));
    }

    @Test
    void attention() {
        OpCheck t = new OpCheck(43);
        int b = 2, heads = 2, lq = 5, lk = 3, d = 4, ld = heads * d;
        Tensor q = t.tensor(t.randn(b * lq * ld)), k = t.tensor(t.randn(b * lk * ld)), v = t.tensor(t.randn(b * lk * ld));
        Tensor out = t.tensor(new float[b * lq * ld]), probs = t.tensor(new float[b * heads * lq * lk]);
        Tensor dOut = t.tensor(t.randn(b * lq * ld));
        t.cpu.attention(out, probs, q, k, v, b, heads, lq, lk, d, 0.5f, false);
        float[] dq0 = t.randn(b * lq * ld), dk0 = t.randn(b * lk * ld), dv0 = t.randn(b * lk * ld);
        Tensor dqAll = t.tensor(dq0.clone()), dkAll = t.tensor(dk0.clone()), dvAll = t.tensor(dv0.clone());
        t.cpu.attentionBackward(dqAll, dkAll, dvAll, dOut, q, k, v, probs, b, heads, lq, lk, d, 0.5f);
        Tensor dqOnly = t.tensor(dq0.clone()), dkOnly = t.tensor(dk0.clone()), dvOnly = t.tensor(dv0.clone());
        t.cpu.attentionBackward(dqOnly, null, null, dOut, q, k, v, probs, b, heads, lq, lk, d, 0.5f);
        t.cpu.attentionBackward(null, dkOnly, null, dOut, q, k, v, probs, b, heads, lq, lk, d, 0.5f);
        t.cpu.attentionBackward(null, null, dvOnly, dOut, q, k, v, probs, b, heads, lq, lk, d, 0.5f);
        assertArrayEquals(t.host(dqAll), t.host(dqOnly));
        assertArrayEquals(t.host(dkAll), t.host(dkOnly));
        assertArrayEquals(t.host(dvAll), t.host(dvOnly));
    }
}
