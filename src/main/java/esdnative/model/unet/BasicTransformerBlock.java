package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.model.nn.Attention;
import esdnative.model.nn.LayerNorm;
import esdnative.model.nn.Linear;
import esdnative.model.nn.Params;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * diffusers' BasicTransformerBlock (layer_norm, GEGLU feed-forward, no attention bias), on tokens h [n, l, dim]:
 * h += attn1(norm1(h)) (self); h += attn2(norm2(h), context) (cross); h += ff(norm3(h)),
 * ff = net.2(GEGLU(net.0.proj(x))) with an inner width of 4·dim.
 */
public final class BasicTransformerBlock {
    private static final float LAYER_NORM_EPS = 1e-5f;
    private final LayerNorm norm1;
    private final Attention attn1;
    private final LayerNorm norm2;
    private final Attention attn2;
    private final LayerNorm norm3;
    private final Linear ffProj;
    private final Linear ffOut;
    private final int dim;

    /** What backward needs; h1 and h2 are a1's and a2's outputs (the residual added in); ffIn lacks its bias. */
    public record Act(Tensor h0, LayerNorm.Act n1, Attention.Act a1, Tensor h1, LayerNorm.Act n2, Attention.Act a2,
                      Tensor h2, LayerNorm.Act n3, Tensor ffIn, Tensor gelu, Tensor out) {}

    public BasicTransformerBlock(String name, int dim, int heads, int headDim, int contextDim) {
        this.dim = dim;
        this.norm1 = new LayerNorm(name + ".norm1", dim, LAYER_NORM_EPS);
        this.attn1 = Attention.diffusers(name + ".attn1", dim, dim, heads, headDim, false);
        this.norm2 = new LayerNorm(name + ".norm2", dim, LAYER_NORM_EPS);
        this.attn2 = Attention.diffusers(name + ".attn2", dim, contextDim, heads, headDim, false);
        this.norm3 = new LayerNorm(name + ".norm3", dim, LAYER_NORM_EPS);
        this.ffProj = new Linear(name + ".ff.net.0.proj", dim, 2 * 4 * dim, true);
        this.ffOut = new Linear(name + ".ff.net.2", 4 * dim, dim, true);
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        norm1.declare(shapes);
        attn1.declare(shapes);
        norm2.declare(shapes);
        attn2.declare(shapes);
        norm3.declare(shapes);
        ffProj.declare(shapes);
        ffOut.declare(shapes);
    }

    /** h [n, l, dim], context [n, lk, contextDim] → [n, l, dim]. */
    public Act forward(Backend be, Weights p, Tensor h, Tensor context, boolean train) {
        int n = h.dim(0), l = h.dim(1), rows = n * l;
        LayerNorm.Act n1 = norm1.forward(be, p, h, rows);
        Tensor x1 = n1.out().reshape(n, l, dim);
        Attention.Act a1 = attn1.forward(be, p, x1, x1, train, h);
        Tensor h1 = a1.out();                                   // h + attention

        LayerNorm.Act n2 = norm2.forward(be, p, h1, rows);
        Attention.Act a2 = attn2.forward(be, p, n2.out().reshape(n, l, dim), context, train, h1);
        Tensor h2 = a2.out();                                   // h1 + attention

        LayerNorm.Act n3 = norm3.forward(be, p, h2, rows);
        Tensor ffIn = ffProj.forwardWithoutBias(be, p, n3.out(), rows);  // its bias is added by gegluBias
        Tensor gelu = be.zeros(rows, 4 * dim);
        be.gegluBias(gelu, ffIn, ffProj.biasTensor(p), rows, 4 * dim);
        Tensor out = ffOut.forwardResidual(be, p, gelu, rows, h2).reshape(n, l, dim);
        return new Act(h, n1, a1, h1, n2, a2, h2, n3, ffIn, gelu, out);
    }

    /** dh += ∂/∂h, dContext += ∂/∂context (may be null). */
    public void backward(Backend be, Weights p, Weights g, Tensor dh, Tensor dContext, Tensor dOut, Act a) {
        int n = a.h0().dim(0), l = a.h0().dim(1), rows = n * l;
        // d: the running gradient of the residual stream, walked back from h3 to h0
        Tensor d = Params.copyOf(be, dOut);

        Tensor dGelu = be.zeros(rows, 4 * dim);
        ffOut.backward(be, p, g, dGelu, d, a.gelu(), rows);
        Tensor dFfIn = be.zeros(rows, 8 * dim);
        be.gegluBiasBackward(dFfIn, dGelu, a.ffIn(), ffProj.biasTensor(p), rows, 4 * dim);
        Tensor dn3 = be.zeros(rows, dim);
        ffProj.backward(be, p, g, dn3, dFfIn, a.n3().out(), rows);
        norm3.backward(be, p, g, d, dn3, a.h2(), a.n3(), rows);

        Tensor dn2 = be.zeros(n, l, dim);
        attn2.backward(be, p, g, dn2, dContext, d, a.a2());
        norm2.backward(be, p, g, d, dn2, a.h1(), a.n2(), rows);

        Tensor dn1 = be.zeros(n, l, dim);
        attn1.backward(be, p, g, dn1, dn1, d, a.a1());
        norm1.backward(be, p, g, d, dn1, a.h0(), a.n1(), rows);

        be.axpy(dh, 1f, d, d.size());
    }
}
