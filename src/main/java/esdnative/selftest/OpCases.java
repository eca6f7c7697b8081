package esdnative.selftest;

import esdnative.tensor.Conv2dShape;

import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

import static esdnative.selftest.OpCase.gemmNamed;
import static esdnative.selftest.OpCase.named;

/**
 * A case for every {@link esdnative.backend.Backend} operation, at small odd sizes (so that no kernel's block or
 * tile divides them), plus larger sizes where a kernel switches strategy (group-norm block sizes, long softmax
 * rows, pointwise convolutions), optional gradients left out, and outputs aliasing inputs where the op allows it.
 */
public final class OpCases {
    private OpCases() {}

    public static List<OpCase> all() {
        List<OpCase> c = new ArrayList<>();
        memory(c);
        gemm(c);
        convolution(c);
        normalisation(c);
        attention(c);
        activations(c);
        shapes(c);
        arithmetic(c);
        embeddingLossOptimiser(c);
        return c;
    }

    private static void memory(List<OpCase> c) {
        c.add(named("fill").out("t", 1001).run((b, t) -> b.fill(t.get("t"), 0.375f)));
        c.add(named("copy").in("src", 1001).out("dst", 1001).run((b, t) -> b.copy(t.get("dst"), t.get("src"))));
        c.add(named("zeros + copy").in("src", 3, 331).out("dst", 3, 331).run((b, t) -> {
            var z = b.zeros(3, 331);
            b.axpy(z, 1f, t.get("src"), 993);
            b.copy(t.get("dst"), z);
        }));
    }

    private static void gemm(List<OpCase> c) {
        int m = 67, n = 45, k = 129;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                String name = "gemm " + (ta ? "T" : "N") + (tb ? "T" : "N") + " 67x45x129";
                int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;  // padded rows
                int aRows = ta ? k : m, bRows = tb ? n : k;
                c.add(gemmNamed(name).in("a", aRows * lda).in("b", bRows * ldb).acc("c", m * ldc)
                        .run((be, t) -> be.gemm(ta, tb, m, n, k, 0.7f, t.get("a"), lda, 0, t.get("b"), ldb, 0,
                                0.3f, t.get("c"), ldc, 0, 1)));
            }
        }
        // batched, with a shared (stride 0) A as the convolutions use it
        int batch = 3;
        c.add(gemmNamed("gemm NT batched x3, beta 0").in("a", batch * m * k).in("b", batch * n * k)
                .out("c", batch * m * n)
                .run((be, t) -> be.gemm(false, true, m, n, k, 1f, t.get("a"), k, (long) m * k, t.get("b"), k,
                        (long) n * k, 0f, t.get("c"), n, (long) m * n, batch)));
        c.add(gemmNamed("gemm NN batched, shared A").in("a", m * k).in("b", batch * k * n).acc("c", batch * m * n)
                .run((be, t) -> be.gemm(false, false, m, n, k, 1f, t.get("a"), k, 0, t.get("b"), n, (long) k * n,
                        1f, t.get("c"), n, (long) m * n, batch)));
        c.add(named("addRowBias").acc("y", 301, 67).in("bias", 67).run((b, t) -> b.addRowBias(t.get("y"), t.get("bias"), 301, 67)));
        c.add(named("addRowBiasResidual").acc("y", 301, 67).in("bias", 67).in("residual", 301, 67)
                .run((b, t) -> b.addRowBiasResidual(t.get("y"), t.get("bias"), t.get("residual"), 301, 67)));
        c.add(named("sumRows").acc("dBias", 67).in("dy", 1001, 67).run((b, t) -> b.sumRows(t.get("dBias"), t.get("dy"), 1001, 67)));
        c.add(named("transpose").in("in", 3, 37, 45).out("out", 3, 45, 37)
                .run((b, t) -> b.transpose(t.get("out"), t.get("in"), 3, 37, 45)));
    }

    private static void convolution(List<OpCase> c) {
        conv(c, "3x3", new Conv2dShape(2, 5, 9, 11, 7, 3, 3, 1, 1), true);
        conv(c, "3x3 s2", new Conv2dShape(2, 6, 10, 13, 4, 3, 3, 2, 1), true);
        conv(c, "1x1", new Conv2dShape(3, 9, 7, 5, 11, 1, 1, 1, 0), true);
        conv(c, "3x3 no bias", new Conv2dShape(1, 3, 8, 8, 5, 3, 3, 1, 1), false);
        convResidual(c, "3x3", new Conv2dShape(2, 5, 9, 11, 7, 3, 3, 1, 1), true);
        convResidual(c, "1x1", new Conv2dShape(3, 9, 7, 5, 11, 1, 1, 1, 0), true);
        convResidual(c, "3x3 no bias", new Conv2dShape(1, 3, 8, 8, 5, 3, 3, 1, 1), false);
        convSampleBias(c, "3x3", new Conv2dShape(2, 5, 9, 11, 7, 3, 3, 1, 1), true);
        convSampleBias(c, "1x1 no bias", new Conv2dShape(3, 9, 7, 5, 11, 1, 1, 1, 0), false);
    }

    private static void convSampleBias(List<OpCase> c, String label, Conv2dShape s, boolean bias) {
        int[] in = {s.n(), s.c(), s.h(), s.w()}, out = {s.n(), s.k(), s.outH(), s.outW()}, w = {s.k(), s.c(), s.r(), s.s()};
        OpCase.Builder fwd = gemmNamed("conv2dSampleBias " + label).in("in", in).in("weight", w)
                .in("sampleBias", s.n(), s.k()).out("out", out);
        if (bias) fwd.in("bias", s.k());
        c.add(fwd.run((b, t) -> b.conv2dSampleBias(t.get("out"), t.get("in"), t.get("weight"), t.get("bias"),
                t.get("sampleBias"), s)));
    }

    private static void convResidual(List<OpCase> c, String label, Conv2dShape s, boolean bias) {
        int[] in = {s.n(), s.c(), s.h(), s.w()}, out = {s.n(), s.k(), s.outH(), s.outW()}, w = {s.k(), s.c(), s.r(), s.s()};
        OpCase.Builder fwd = gemmNamed("conv2dResidual " + label).in("in", in).in("weight", w).in("residual", out)
                .out("out", out);
        if (bias) fwd.in("bias", s.k());
        c.add(fwd.run((b, t) -> b.conv2dResidual(t.get("out"), t.get("in"), t.get("weight"), t.get("bias"),
                t.get("residual"), s)));
    }

    private static void conv(List<OpCase> c, String label, Conv2dShape s, boolean bias) {
        int[] in = {s.n(), s.c(), s.h(), s.w()}, out = {s.n(), s.k(), s.outH(), s.outW()}, w = {s.k(), s.c(), s.r(), s.s()};
        OpCase.Builder fwd = gemmNamed("conv2d " + label).in("in", in).in("weight", w).out("out", out);
        if (bias) fwd.in("bias", s.k());
        c.add(fwd.run((b, t) -> b.conv2d(t.get("out"), t.get("in"), t.get("weight"), t.get("bias"), s)));
        c.add(gemmNamed("conv2dBackwardData " + label).acc("dIn", in).in("dOut", out).in("weight", w)
                .run((b, t) -> b.conv2dBackwardData(t.get("dIn"), t.get("dOut"), t.get("weight"), s)));
        OpCase.Builder bw = gemmNamed("conv2dBackwardWeight " + label).acc("dWeight", w).in("dOut", out).in("in", in);
        if (bias) bw.acc("dBias", s.k());
        c.add(bw.run((b, t) -> b.conv2dBackwardWeight(t.get("dWeight"), t.get("dBias"), t.get("dOut"), t.get("in"), s)));
    }

    private static void normalisation(List<OpCase> c) {
        groupNorm(c, 2, 12, 63, 4);        // short planes: 64-thread blocks
        groupNorm(c, 2, 64, 1024, 8);      // 1024-pixel planes: 128-thread blocks
        groupNorm(c, 1, 8, 6000, 2);       // few long planes: each cut into pieces
        groupNormSilu(c, 2, 12, 63, 4, true);
        groupNormSilu(c, 2, 32, 256, 8, false);  // the tiny models' 16×16 latents; no parameter gradients
        groupNormSilu(c, 1, 8, 6000, 2, true);
        c.add(named("groupNorm, no saved stats").in("in", 2, 12, 63).in("gamma", 12).in("beta", 12).out("out", 2, 12, 63)
                .run((b, t) -> b.groupNorm(t.get("out"), null, null, t.get("in"), t.get("gamma"), t.get("beta"),
                        2, 12, 63, 4, 1e-5f)));
        c.add(named("groupNormBackward, dIn only").acc("dIn", 2, 12, 63).in("dOut", 2, 12, 63).in("in", 2, 12, 63)
                .inRange("mean", -0.2f, 0.2f, 8).inRange("rstd", 0.5f, 2f, 8).in("gamma", 12)
                .run((b, t) -> b.groupNormBackward(t.get("dIn"), null, null, t.get("dOut"), t.get("in"), t.get("mean"),
                        t.get("rstd"), t.get("gamma"), 2, 12, 63, 4)));

        int rows = 77, cols = 333;
        c.add(named("layerNorm 77x333").in("in", rows, cols).in("gamma", cols).in("beta", cols)
                .out("out", rows, cols).out("mean", rows).out("rstd", rows)
                .run((b, t) -> b.layerNorm(t.get("out"), t.get("mean"), t.get("rstd"), t.get("in"), t.get("gamma"),
                        t.get("beta"), rows, cols, 1e-5f)));
        c.add(named("layerNormBackward 77x333").acc("dIn", rows, cols).acc("dGamma", cols).acc("dBeta", cols)
                .in("dOut", rows, cols).in("in", rows, cols).inRange("mean", -0.2f, 0.2f, rows).inRange("rstd", 0.5f, 2f, rows)
                .in("gamma", cols)
                .run((b, t) -> b.layerNormBackward(t.get("dIn"), t.get("dGamma"), t.get("dBeta"), t.get("dOut"),
                        t.get("in"), t.get("mean"), t.get("rstd"), t.get("gamma"), rows, cols)));
        c.add(named("layerNormBackward, params only").acc("dGamma", 40).acc("dBeta", 40).in("dOut", 999, 40)
                .in("in", 999, 40).inRange("mean", -0.2f, 0.2f, 999).inRange("rstd", 0.5f, 2f, 999).in("gamma", 40)
                .run((b, t) -> b.layerNormBackward(null, t.get("dGamma"), t.get("dBeta"), t.get("dOut"), t.get("in"),
                        t.get("mean"), t.get("rstd"), t.get("gamma"), 999, 40)));

        c.add(named("softmax 129x1000").inRange("in", -8f, 8f, 129, 1000).out("out", 129, 1000)
                .run((b, t) -> b.softmax(t.get("out"), t.get("in"), 129, 1000)));
        c.add(named("softmax in place 33x77").accRange("x", -8f, 8f, 33, 77)
                .run((b, t) -> b.softmax(t.get("x"), t.get("x"), 33, 77)));
        c.add(named("softmaxBackward 129x77").acc("dIn", 129, 77).in("dOut", 129, 77).inRange("out", 0f, 0.05f, 129, 77)
                .run((b, t) -> b.softmaxBackward(t.get("dIn"), t.get("dOut"), t.get("out"), 129, 77)));
    }

    private static void groupNorm(List<OpCase> c, int n, int ch, int hw, int groups) {
        String size = n + "x" + ch + "x" + hw + " g" + groups;
        c.add(named("groupNorm " + size).in("in", n, ch, hw).in("gamma", ch).in("beta", ch)
                .out("out", n, ch, hw).out("mean", n * groups).out("rstd", n * groups)
                .run((b, t) -> b.groupNorm(t.get("out"), t.get("mean"), t.get("rstd"), t.get("in"), t.get("gamma"),
                        t.get("beta"), n, ch, hw, groups, 1e-5f)));
        c.add(named("groupNormBackward " + size).acc("dIn", n, ch, hw).acc("dGamma", ch).acc("dBeta", ch)
                .in("dOut", n, ch, hw).in("in", n, ch, hw).inRange("mean", -0.2f, 0.2f, n * groups)
                .inRange("rstd", 0.5f, 2f, n * groups).in("gamma", ch)
                .run((b, t) -> b.groupNormBackward(t.get("dIn"), t.get("dGamma"), t.get("dBeta"), t.get("dOut"),
                        t.get("in"), t.get("mean"), t.get("rstd"), t.get("gamma"), n, ch, hw, groups)));
    }

    private static void groupNormSilu(List<OpCase> c, int n, int ch, int hw, int groups, boolean paramGrads) {
        String size = n + "x" + ch + "x" + hw + " g" + groups;
        c.add(named("groupNormSilu " + size).in("in", n, ch, hw).in("gamma", ch).in("beta", ch)
                .out("out", n, ch, hw).out("mean", n * groups).out("rstd", n * groups)
                .run((b, t) -> b.groupNormSilu(t.get("out"), t.get("mean"), t.get("rstd"), t.get("in"), t.get("gamma"),
                        t.get("beta"), n, ch, hw, groups, 1e-5f)));
        // from the statistics the forward saved: the backward recomputes the normalised values from them
        OpCase.Builder backward = named("groupNormSiluBackward " + size + (paramGrads ? "" : ", dIn only"))
                .acc("dIn", n, ch, hw).in("dOut", n, ch, hw).in("in", n, ch, hw).in("gamma", ch).in("beta", ch)
                .out("mean", n * groups).out("rstd", n * groups);
        if (paramGrads) backward.acc("dGamma", ch).acc("dBeta", ch);
        c.add(backward.run((b, t) -> {
            b.groupNormSilu(b.zeros(n, ch, hw), t.get("mean"), t.get("rstd"), t.get("in"), t.get("gamma"),
                    t.get("beta"), n, ch, hw, groups, 1e-5f);
            b.groupNormSiluBackward(t.get("dIn"), t.get("dGamma"), t.get("dBeta"), t.get("dOut"), t.get("in"),
                    t.get("mean"), t.get("rstd"), t.get("gamma"), t.get("beta"), n, ch, hw, groups, 1e-5f);
        }));
    }

    private static void attention(List<OpCase> c) {
        attention(c, "cross 13x17", 2, 3, 13, 17, 8);
        // the head dims of SD 1.x/2.x (40, 64, 80, 160) at token counts no kernel tile divides
        attention(c, "d40 70x77", 1, 2, 70, 77, 40);
        attention(c, "d64 33x65", 1, 1, 33, 65, 64);
        attention(c, "d80 41x40", 1, 1, 41, 40, 80);
        attention(c, "d160 36x35", 1, 1, 36, 35, 160);
        int b = 2, h = 4, l = 11, d = 8;
        float scale = (float) (1 / Math.sqrt(d));
        c.add(gemmNamed("attention causal 11x11").in("q", b, l, h * d).in("k", b, l, h * d).in("v", b, l, h * d)
                .out("out", b, l, h * d)
                .run((be, t) -> be.attention(t.get("out"), null, t.get("q"), t.get("k"), t.get("v"), b, h, l, l, d,
                        scale, true)));
    }

    /**
     * Attention forward (nothing saved), then forward saving what the backend's backward needs (its own form:
     * the probabilities, or row statistics) and the backward from it, into gradients holding earlier values.
     */
    private static void attention(List<OpCase> c, String label, int b, int h, int lq, int lk, int d) {
        float scale = (float) (1 / Math.sqrt(d));
        c.add(gemmNamed("attention " + label).in("q", b, lq, h * d).in("k", b, lk, h * d).in("v", b, lk, h * d)
                .out("out", b, lq, h * d)
                .run((be, t) -> be.attention(t.get("out"), null, t.get("q"), t.get("k"), t.get("v"),
                        b, h, lq, lk, d, scale, false)));
        c.add(gemmNamed("attention + backward " + label).out("out", b, lq, h * d).acc("dq", b, lq, h * d)
                .acc("dk", b, lk, h * d).acc("dv", b, lk, h * d).in("dOut", b, lq, h * d).in("q", b, lq, h * d)
                .in("k", b, lk, h * d).in("v", b, lk, h * d)
                .run((be, t) -> {
                    Tensor saved = be.zeros(be.attentionSavedShape(b, h, lq, lk));
                    be.attention(t.get("out"), saved, t.get("q"), t.get("k"), t.get("v"), b, h, lq, lk, d, scale,
                            false);
                    be.attentionBackward(t.get("dq"), t.get("dk"), t.get("dv"), t.get("dOut"), t.get("q"), t.get("k"),
                            t.get("v"), saved, b, h, lq, lk, d, scale);
                }));
        c.add(gemmNamed("attention + backward, dv only " + label).acc("dv", b, lk, h * d).in("dOut", b, lq, h * d)
                .in("q", b, lq, h * d).in("k", b, lk, h * d).in("v", b, lk, h * d)
                .run((be, t) -> {
                    Tensor saved = be.zeros(be.attentionSavedShape(b, h, lq, lk));
                    Tensor out = be.zeros(b, lq, h * d);
                    be.attention(out, saved, t.get("q"), t.get("k"), t.get("v"), b, h, lq, lk, d, scale, false);
                    be.attentionBackward(null, null, t.get("dv"), t.get("dOut"), t.get("q"), t.get("k"), t.get("v"),
                            saved, b, h, lq, lk, d, scale);
                }));
    }

    private static void activations(List<OpCase> c) {
        int n = 100_003;
        c.add(named("silu").inRange("in", -6f, 6f, n).out("out", n).run((b, t) -> b.silu(t.get("out"), t.get("in"), n)));
        c.add(named("siluBackward").acc("dIn", n).in("dOut", n).inRange("in", -6f, 6f, n)
                .run((b, t) -> b.siluBackward(t.get("dIn"), t.get("dOut"), t.get("in"), n)));
        c.add(named("gelu").inRange("in", -6f, 6f, n).out("out", n).run((b, t) -> b.gelu(t.get("out"), t.get("in"), n)));
        c.add(named("geluBackward").acc("dIn", n).in("dOut", n).inRange("in", -6f, 6f, n)
                .run((b, t) -> b.geluBackward(t.get("dIn"), t.get("dOut"), t.get("in"), n)));
        c.add(named("quickGelu").inRange("in", -6f, 6f, n).out("out", n)
                .run((b, t) -> b.quickGelu(t.get("out"), t.get("in"), n)));
        c.add(named("quickGeluBackward").acc("dIn", n).in("dOut", n).inRange("in", -6f, 6f, n)
                .run((b, t) -> b.quickGeluBackward(t.get("dIn"), t.get("dOut"), t.get("in"), n)));
        c.add(named("silu in place").accRange("x", -6f, 6f, 1001).run((b, t) -> b.silu(t.get("x"), t.get("x"), 1001)));
        int rows = 37, cols = 77;
        c.add(named("geglu 37x77").inRange("in", -4f, 4f, rows, 2 * cols).out("out", rows, cols)
                .run((b, t) -> b.geglu(t.get("out"), t.get("in"), rows, cols)));
        c.add(named("gegluBackward 37x77").acc("dIn", rows, 2 * cols).in("dOut", rows, cols).inRange("in", -4f, 4f, rows, 2 * cols)
                .run((b, t) -> b.gegluBackward(t.get("dIn"), t.get("dOut"), t.get("in"), rows, cols)));
        c.add(named("gegluBias 37x77").inRange("in", -4f, 4f, rows, 2 * cols).in("bias", 2 * cols)
                .out("out", rows, cols)
                .run((b, t) -> b.gegluBias(t.get("out"), t.get("in"), t.get("bias"), rows, cols)));
        c.add(named("gegluBiasBackward 37x77").acc("dIn", rows, 2 * cols).in("dOut", rows, cols)
                .inRange("in", -4f, 4f, rows, 2 * cols).in("bias", 2 * cols)
                .run((b, t) -> b.gegluBiasBackward(t.get("dIn"), t.get("dOut"), t.get("in"), t.get("bias"), rows,
                        cols)));
    }

    private static void shapes(List<OpCase> c) {
        int nc = 7, h = 5, w = 9;
        c.add(named("upsampleNearest2x").in("in", nc, h, w).out("out", nc, 2 * h, 2 * w)
                .run((b, t) -> b.upsampleNearest2x(t.get("out"), t.get("in"), nc, h, w)));
        c.add(named("upsampleNearest2xBackward").acc("dIn", nc, h, w).in("dOut", nc, 2 * h, 2 * w)
                .run((b, t) -> b.upsampleNearest2xBackward(t.get("dIn"), t.get("dOut"), nc, h, w)));
        int n = 3, ca = 5, cb = 7, hw = 33;
        c.add(named("concatChannels").in("a", n, ca, hw).in("b", n, cb, hw).out("out", n, ca + cb, hw)
                .run((b, t) -> b.concatChannels(t.get("out"), t.get("a"), t.get("b"), n, ca, cb, hw)));
        c.add(named("splitChannels").acc("dA", n, ca, hw).acc("dB", n, cb, hw).in("dOut", n, ca + cb, hw)
                .run((b, t) -> b.splitChannels(t.get("dA"), t.get("dB"), t.get("dOut"), n, ca, cb, hw)));
        c.add(named("splitChannels, dB only").acc("dB", n, cb, hw).in("dOut", n, ca + cb, hw)
                .run((b, t) -> b.splitChannels(null, t.get("dB"), t.get("dOut"), n, ca, cb, hw)));
    }

    private static void arithmetic(List<OpCase> c) {
        int n = 100_003;
        c.add(named("add").in("a", n).in("b", n).out("out", n).run((b, t) -> b.add(t.get("out"), t.get("a"), t.get("b"), n)));
        c.add(named("add in place").acc("a", n).in("b", n).run((b, t) -> b.add(t.get("a"), t.get("a"), t.get("b"), n)));
        c.add(named("axpy").acc("y", n).in("x", n).run((b, t) -> b.axpy(t.get("y"), -0.37f, t.get("x"), n)));
        c.add(named("scale").in("x", n).out("out", n).run((b, t) -> b.scale(t.get("out"), t.get("x"), 1.7f, n)));
        c.add(named("scale in place").acc("x", n).run((b, t) -> b.scale(t.get("x"), t.get("x"), -0.3f, n)));
        c.add(named("linearCombination").in("a", n).in("b", n).out("out", n)
                .run((b, t) -> b.linearCombination(t.get("out"), 0.8f, t.get("a"), -1.3f, t.get("b"), n)));
        c.add(named("linearCombination in place").in("a", n).acc("b", n)
                .run((b, t) -> b.linearCombination(t.get("b"), 0.8f, t.get("a"), -1.3f, t.get("b"), n)));
        int bn = 3, ch = 5, hw = 97;
        c.add(named("addChannelBias").acc("y", bn, ch, hw).in("bias", bn, ch)
                .run((b, t) -> b.addChannelBias(t.get("y"), t.get("bias"), bn, ch, hw)));
        c.add(named("sumChannelBias").acc("dBias", bn, ch).in("dy", bn, ch, hw)
                .run((b, t) -> b.sumChannelBias(t.get("dBias"), t.get("dy"), bn, ch, hw)));
    }

    private static void embeddingLossOptimiser(List<OpCase> c) {
        float[] timesteps = {0f, 1f, 37f, 500.5f, 999f};
        c.add(named("timestepEmbedding 320, flip").out("out", timesteps.length, 320)
                .run((b, t) -> b.timestepEmbedding(t.get("out"), timesteps, 320, true, 0f, 10000f)));
        c.add(named("timestepEmbedding 33 (odd), shift 1").out("out", timesteps.length, 33)
                .run((b, t) -> b.timestepEmbedding(t.get("out"), timesteps, 33, false, 1f, 10000f)));
        int n = 100_003;
        c.add(named("mseLoss").in("pred", n).in("target", n).scalar((b, t) -> b.mseLoss(t.get("pred"), t.get("target"), n)));
        c.add(named("mseLossBackward").acc("dPred", n).in("pred", n).in("target", n)
                .run((b, t) -> b.mseLossBackward(t.get("dPred"), t.get("pred"), t.get("target"), n, 0.5f)));
        int p = 10_007;
        c.add(named("adamStep").acc("param", p).inRange("grad", -1e-3f, 1e-3f, p).accRange("m", -1e-3f, 1e-3f, p)
                .accRange("v", 0f, 1e-6f, p)
                .run((b, t) -> b.adamStep(t.get("param"), t.get("grad"), t.get("m"), t.get("v"), p, 3, 1e-5f, 0.9f,
                        0.999f, 1e-8f, 0f)));
        c.add(named("adamStep, weight decay").acc("param", p).inRange("grad", -1e-3f, 1e-3f, p).accRange("m", -1e-3f, 1e-3f, p)
                .accRange("v", 0f, 1e-6f, p)
                .run((b, t) -> b.adamStep(t.get("param"), t.get("grad"), t.get("m"), t.get("v"), p, 1, 1e-3f, 0.9f,
                        0.999f, 1e-8f, 0.01f)));
    }
}
