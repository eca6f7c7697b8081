package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * diffusers' Attention: to_q/to_k/to_v (without bias in the UNet, with it in the VAE), multi-head
 * softmax(q kᵀ / √d) v, to_out.0 with bias. Self-attention when the context is the input itself, cross-attention on the text context
 * otherwise. With upcast_attention diffusers computes the scores in float32, which is what this always does.
 */
public final class Attention {
    private final Linear toQ;
    private final Linear toK;
    private final Linear toV;
    private final Linear toOut;
    private final int heads;
    private final int headDim;

    /**
     * What backward needs. x [n, lq, queryDim], ctx [n, lk, contextDim], q/k/v/o [n·l, heads·headDim], stats
     * [n, heads, lq] (each query's log-sum-exp: the backward recomputes the probabilities from it).
     */
    public record Act(Tensor x, Tensor ctx, Tensor q, Tensor k, Tensor v, Tensor stats, Tensor o, Tensor out) {}

    public Attention(String name, int queryDim, int contextDim, int heads, int headDim, boolean qkvBias) {
        int inner = heads * headDim;
        this.toQ = new Linear(name + ".to_q", queryDim, inner, qkvBias);
        this.toK = new Linear(name + ".to_k", contextDim, inner, qkvBias);
        this.toV = new Linear(name + ".to_v", contextDim, inner, qkvBias);
        this.toOut = new Linear(name + ".to_out.0", inner, queryDim, true);
        this.heads = heads;
        this.headDim = headDim;
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        toQ.declare(shapes);
        toK.declare(shapes);
        toV.declare(shapes);
        toOut.declare(shapes);
    }

    private float scale() { return (float) (1.0 / Math.sqrt(headDim)); }

    /**
     * x [n, lq, queryDim], ctx [n, lk, contextDim] (x itself for self-attention) → out [n, lq, queryDim].
     * Per-query statistics [n, heads, lq] are kept when {@code train}; the probabilities [n, heads, lq, lk] never.
     */
    public Act forward(Backend be, Weights p, Tensor x, Tensor ctx, boolean train) {
        int n = x.dim(0), lq = x.dim(1), lk = ctx.dim(1);
        Tensor q = toQ.forward(be, p, x, n * lq);
        Tensor k = toK.forward(be, p, ctx, n * lk);
        Tensor v = toV.forward(be, p, ctx, n * lk);
        Tensor stats = train ? be.zeros(n, heads, lq) : null;
        Tensor o = be.zeros(n * lq, heads * headDim);
        be.attentionWithStats(o, stats, q, k, v, n, heads, lq, lk, headDim, scale());
        Tensor out = toOut.forward(be, p, o, n * lq).reshape(n, lq, toOut.out());
        return new Act(x, ctx, q, k, v, stats, o, out);
    }

    /**
     * dx += ∂/∂x through the query; dCtx += ∂/∂ctx through keys and values (for self-attention pass the same
     * tensor as dx; either may be null).
     */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dCtx, Tensor dOut, Act a) {
        int n = a.x().dim(0), lq = a.x().dim(1), lk = a.ctx().dim(1);
        Tensor dO = be.zeros(a.o().shape());
        toOut.backward(be, p, g, dO, dOut, a.o(), n * lq);
        Tensor dq = be.zeros(a.q().shape());
        Tensor dk = be.zeros(a.k().shape());
        Tensor dv = be.zeros(a.v().shape());
        be.attentionBackwardFromStats(dq, dk, dv, dO, a.q(), a.k(), a.v(), a.o(), a.stats(), n, heads, lq, lk, headDim, scale());
        toQ.backward(be, p, g, dx, dq, a.x(), n * lq);
        toK.backward(be, p, g, dCtx, dk, a.ctx(), n * lk);
        toV.backward(be, p, g, dCtx, dv, a.ctx(), n * lk);
    }
}
