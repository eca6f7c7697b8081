package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/**
 * torch.nn.Linear over rows: y[rows, out] = x[rows, in] · Wᵀ + b, with W [out, in] named {@code name.weight}
 * and b [out] named {@code name.bias} (when {@code bias}).
 */
public record Linear(String name, int in, int out, boolean bias) {

    public void declare(SequencedMap<String, int[]> shapes) {
        shapes.put(name + ".weight", new int[] {out, in});
        if (bias) shapes.put(name + ".bias", new int[] {out});
    }

    /** Returns y [rows, out]. */
    public Tensor forward(Backend be, Weights p, Tensor x, int rows) {
        Tensor y = forwardWithoutBias(be, p, x, rows);
        if (bias) be.addRowBias(y, p.get(name + ".bias"), rows, out);
        return y;
    }

    /** Returns y + residual [rows, out]: a residual connection (its backward is the caller's), one pass after the GEMM. */
    public Tensor forwardResidual(Backend be, Weights p, Tensor x, int rows, Tensor residual) {
        Tensor y = forwardWithoutBias(be, p, x, rows);
        if (bias) {
            be.addRowBiasResidual(y, p.get(name + ".bias"), residual, rows, out);
        } else {
            be.add(y, y, residual, (long) rows * out);
        }
        return y;
    }

    /**
     * Returns x · Wᵀ [rows, out] without the bias, for a next op that adds the bias ({@link #biasTensor}) as it reads
     * y; the backward is {@link #backward} all the same.
     */
    public Tensor forwardWithoutBias(Backend be, Weights p, Tensor x, int rows) {
        Tensor y = be.zeros(rows, out);
        be.gemm(false, true, rows, out, in, 1f, x, in, 0, p.get(name + ".weight"), in, 0, 0f, y, out, 0, 1);
        return y;
    }

    /** The bias [out], or null when the layer has none. */
    public Tensor biasTensor(Weights p) {
        return bias ? p.get(name + ".bias") : null;
    }

    /** dx += dy · W (dx may be null); dW += dyᵀ · x; db += Σ_rows dy (each skipped when its gradient is absent). */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dy, Tensor x, int rows) {
        if (dx != null) {
            be.gemm(false, false, rows, in, out, 1f, dy, out, 0, p.get(name + ".weight"), in, 0, 1f, dx, in, 0, 1);
        }
        Tensor dw = Params.grad(g, name + ".weight");
        if (dw != null) be.gemm(true, false, out, in, rows, 1f, dy, out, 0, x, in, 0, 1f, dw, in, 0, 1);
        Tensor db = bias ? Params.grad(g, name + ".bias") : null;
        if (db != null) be.sumRows(db, dy, rows, out);
    }
}
