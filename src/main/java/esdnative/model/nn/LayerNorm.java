package esdnative.model.nn;

import esdnative.backend.Backend;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/** torch.nn.LayerNorm over the last dimension of x[rows, dim]: weight/bias [dim]. */
public record LayerNorm(String name, int dim, float eps) {

    public record Act(Tensor out, Tensor mean, Tensor rstd) {}

    public void declare(SequencedMap<String, int[]> shapes) {
        shapes.put(name + ".weight", new int[] {dim});
        shapes.put(name + ".bias", new int[] {dim});
    }

    public Act forward(Backend be, Weights p, Tensor x, int rows) {
        Tensor out = be.zeros(rows, dim);
        Tensor mean = be.zeros(rows);
        Tensor rstd = be.zeros(rows);
        be.layerNorm(out, mean, rstd, x, p.get(name + ".weight"), p.get(name + ".bias"), rows, dim, eps);
        return new Act(out, mean, rstd);
    }

    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dy, Tensor x, Act act, int rows) {
        be.layerNormBackward(dx, Params.grad(g, name + ".weight"), Params.grad(g, name + ".bias"), dy, x,
                act.mean(), act.rstd(), p.get(name + ".weight"), rows, dim);
    }
}
