package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * Multi-head attention with four linear projections: out = proj_out(softmax(q kᵀ / √d) v) with q = proj_q(x),
 * k = proj_k(ctx), v = proj_v(ctx). Self-attention when the context is the input itself, cross-attention on the
 * text context otherwise; causal (each query sees its own and earlier positions) for the CLIP text tower. The
 * scores are always computed in float32 (what diffusers' upcast_attention asks for).
 *
 * <p>Two namings: diffusers' Attention (to_q/to_k/to_v, without bias in the UNet, with it in the VAE; to_out.0
 * with bias) and transformers' CLIPAttention (q_proj/k_proj/v_proj/out_proj, all with bias).
 */
public final class Attention {
    private final Linear toQ;
    private final Linear toK;
    private final Linear toV;
    private final Linear toOut;
    private final int heads;
    private final int headDim;
    private final boolean causal;

    /**
     * What backward needs. x [n, lq, queryDim], ctx [n, lk, contextDim], q/k/v/o [n·l, heads·headDim], stats
     * [n, heads, lq] (each query's log-sum-exp: the backward recomputes the probabilities from it).
     */
    public record Act(Tensor x, Tensor ctx, Tensor q, Tensor k, Tensor v, Tensor stats, Tensor o, Tensor out) {}

    private Attention(Linear toQ, Linear toK, Linear toV, Linear toOut, int heads, int headDim, boolean causal) {
        this.toQ = toQ;
        this.toK = toK;
        this.toV = toV;
        this.toOut = toOut;
        this.heads = heads;
        this.headDim = headDim;
        this.causal = causal;
    }

    /** diffusers' Attention {@code name}: to_q/to_k/to_v (bias when {@code qkvBias}), to_out.0 with bias. */
    public static Attention diffusers(String name, int queryDim, int contextDim, int heads, int headDim,
                                      boolean qkvBias) {
        int inner = heads * headDim;
        return new Attention(new Linear(name + ".to_q", queryDim, inner, qkvBias),
                new Linear(name + ".to_k", contextDim, inner, qkvBias),
                new Linear(name + ".to_v", contextDim, inner, qkvBias),
                new Linear(name + ".to_out.0", inner, queryDim, true), heads, headDim, false);
    }

    /** transformers' CLIPAttention {@code name} (self-attention of width {@code dim}): q/k/v/out_proj with bias. */
    public static Attention clip(String name, int dim, int heads, boolean causal) {
        return new Attention(new Linear(name + ".q_proj", dim, dim, true), new Linear(name + ".k_proj", dim, dim, true),
                new Linear(name + ".v_proj", dim, dim, true), new Linear(name + ".out_proj", dim, dim, true),
                heads, dim / heads, causal);
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
     * Per-query statistics [n, heads, lq] are kept when {@code train} (causal: what the backend's masked backward
     * needs); the probabilities [n, heads, lq, lk] never, except by a backend's causal attention.
     */
    public Act forward(Backend be, Weights p, Tensor x, Tensor ctx, boolean train) {
        return forward(be, p, x, ctx, train, null);
    }

    /**
     * {@link #forward}, with {@code residual} [n, lq, queryDim] (null: none) added to the output in to_out's bias pass:
     * the Act's out is then attention + residual (the residual's gradient is the caller's).
     */
    public Act forward(Backend be, Weights p, Tensor x, Tensor ctx, boolean train, Tensor residual) {
        int n = x.dim(0), lq = x.dim(1), lk = ctx.dim(1);
        Tensor q = toQ.forward(be, p, x, n * lq);
        Tensor k = toK.forward(be, p, ctx, n * lk);
        Tensor v = toV.forward(be, p, ctx, n * lk);
        Tensor o = be.zeros(n * lq, heads * headDim);
        Tensor stats;
        if (causal) { // CLIP's text tower: what the backend saves for a masked backward (never trained in ESD)
            stats = train ? be.zeros(be.attentionSavedShape(n, heads, lq, lk)) : null;
            be.attention(o, stats, q, k, v, n, heads, lq, lk, headDim, scale(), true);
        } else {
            stats = train ? be.zeros(n, heads, lq) : null;
            be.attentionWithStats(o, stats, q, k, v, n, heads, lq, lk, headDim, scale());
        }
        Tensor projected = residual != null ? toOut.forwardResidual(be, p, o, n * lq, residual)
                : toOut.forward(be, p, o, n * lq);
        Tensor out = projected.reshape(n, lq, toOut.out());
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
        if (causal) be.attentionBackward(dq, dk, dv, dO, a.q(), a.k(), a.v(), a.stats(), n, heads, lq, lk, headDim, scale());
        else be.attentionBackwardFromStats(dq, dk, dv, dO, a.q(), a.k(), a.v(), a.o(), a.stats(), n, heads, lq, lk, headDim, scale());
        toQ.backward(be, p, g, dx, dq, a.x(), n * lq);
        toK.backward(be, p, g, dCtx, dk, a.ctx(), n * lk);
        toV.backward(be, p, g, dCtx, dv, a.ctx(), n * lk);
    }
}
