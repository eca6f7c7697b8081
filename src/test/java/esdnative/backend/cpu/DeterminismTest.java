package esdnative.backend.cpu;

import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Every reducing op gives the same bits on 1 thread as on several (fixed reduction order). */
class DeterminismTest {

    /** runs the ops on fresh, identically seeded inputs and returns every output and gradient */
    private static List<float[]> runAll() {
        OpCheck t = new OpCheck(2024);
        CpuBackend cpu = t.cpu;
        List<float[]> results = new ArrayList<>();

        Conv2dShape sh = new Conv2dShape(2, 8, 12, 11, 6, 3, 3, 1, 1);
        Tensor x = t.tensor(t.randn(2 * 8 * 12 * 11)), w = t.tensor(t.randn(6 * 8 * 9)), b = t.tensor(t.randn(6));
        Tensor y = t.tensor(new float[2 * 6 * 12 * 11]), dy = t.tensor(t.randn(2 * 6 * 12 * 11));
        Tensor dx = t.tensor(t.randn(2 * 8 * 12 * 11)), dw = t.tensor(t.randn(6 * 8 * 9)), db = t.tensor(t.randn(6));
        cpu.conv2d(y, x, w, b, sh);
        cpu.conv2dBackwardData(dx, dy, w, sh);
        cpu.conv2dBackwardWeight(dw, db, dy, x, sh);
        results.addAll(List.of(t.host(y), t.host(dx), t.host(dw), t.host(db)));

        Tensor c = t.tensor(t.randn(3 * 40 * 50));
        cpu.gemm(false, true, 40, 50, 30, 0.5f, t.tensor(t.randn(3 * 40 * 30)), 30, 40 * 30,
                t.tensor(t.randn(3 * 50 * 30)), 30, 50 * 30, 1f, c, 50, 40 * 50, 3);
        results.add(t.host(c));

        int bs = 2, heads = 4, lq = 33, lk = 17, d = 8;
        Tensor q = t.tensor(t.randn(bs * lq * heads * d)), k = t.tensor(t.randn(bs * lk * heads * d));
        Tensor v = t.tensor(t.randn(bs * lk * heads * d)), out = t.tensor(new float[bs * lq * heads * d]);
        Tensor probs = t.tensor(new float[bs * heads * lq * lk]);
        Tensor dq = t.tensor(t.randn(bs * lq * heads * d)), dk = t.tensor(t.randn(bs * lk * heads * d));
        Tensor dv = t.tensor(t.randn(bs * lk * heads * d));
        cpu.attention(out, probs, q, k, v, bs, heads, lq, lk, d, 0.35f, false);
        cpu.attentionBackward(dq, dk, dv, t.tensor(t.randn(bs * lq * heads * d)), q, k, v, probs, bs, heads, lq, lk, d, 0.35f);
        results.addAll(List.of(t.host(out), t.host(probs), t.host(dq), t.host(dk), t.host(dv)));

        int n = 2, ch = 8, hw = 64, groups = 4;
        Tensor gx = t.tensor(t.randn(n * ch * hw)), gamma = t.tensor(t.randn(ch)), beta = t.tensor(t.randn(ch));
        Tensor gy = t.tensor(new float[n * ch * hw]), mean = t.tensor(new float[n * groups]), rstd = t.tensor(new float[n * groups]);
        Tensor gdx = t.tensor(t.randn(n * ch * hw)), dgamma = t.tensor(t.randn(ch)), dbeta = t.tensor(t.randn(ch));
        cpu.groupNorm(gy, mean, rstd, gx, gamma, beta, n, ch, hw, groups, 1e-5f);
        cpu.groupNormBackward(gdx, dgamma, dbeta, t.tensor(t.randn(n * ch * hw)), gx, mean, rstd, gamma, n, ch, hw, groups);
        results.addAll(List.of(t.host(gy), t.host(mean), t.host(rstd), t.host(gdx), t.host(dgamma), t.host(dbeta)));

        int rows = 40, cols = 130;
        Tensor lx = t.tensor(t.randn(rows * cols)), lg = t.tensor(t.randn(cols)), lb = t.tensor(t.randn(cols));
        Tensor ly = t.tensor(new float[rows * cols]), lm = t.tensor(new float[rows]), lr = t.tensor(new float[rows]);
        Tensor ldx = t.tensor(t.randn(rows * cols)), ldg = t.tensor(t.randn(cols)), ldb = t.tensor(t.randn(cols));
        cpu.layerNorm(ly, lm, lr, lx, lg, lb, rows, cols, 1e-5f);
        cpu.layerNormBackward(ldx, ldg, ldb, t.tensor(t.randn(rows * cols)), lx, lm, lr, lg, rows, cols);
        Tensor bias = t.tensor(t.randn(cols));
        cpu.sumRows(bias, t.tensor(t.randn(rows * cols)), rows, cols);
        Tensor sm = t.tensor(new float[rows * cols]);
        cpu.softmax(sm, lx, rows, cols);
        results.addAll(List.of(t.host(ly), t.host(lm), t.host(lr), t.host(ldx), t.host(ldg), t.host(ldb), t.host(bias), t.host(sm)));

        int big = 50_000;
        Tensor p = t.tensor(t.randn(big)), target = t.tensor(t.randn(big));
        results.add(new float[]{cpu.mseLoss(p, target, big)});
        Tensor m = t.tensor(new float[big]), vv = t.tensor(new float[big]);
        cpu.adamStep(p, target, m, vv, big, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0f);
        results.add(t.host(p));
        return results;
    }

    @Test
    void sameBitsOnOneAndSeveralThreads() {
        List<List<float[]>> runs = new ArrayList<>();
        Parallel.withThreads(1, () -> runs.add(runAll()));
        Parallel.withThreads(3, () -> runs.add(runAll()));
        Parallel.withThreads(4, () -> runs.add(runAll()));
        List<float[]> one = runs.get(0);
        for (List<float[]> other : runs.subList(1, runs.size())) {
            assertEquals(one.size(), other.size());
            for (int i = 0; i < one.size(); i++) assertArrayEquals(one.get(i), other.get(i), "result " + i);
        }
    }
}
