package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;

/**
 * diffusers' CrossAttnUpBlock2D (with attentions) or UpBlock2D (without): {@code layers} × (concatenate
 * [h | skip] on channels → ResnetBlock2D [→ Transformer2DModel]), then an Upsample2D unless it is the last block.
 * Resnet i takes prevOut (i = 0) or out channels, plus the skip's channels: {@code in} for the last resnet,
 * {@code out} for the others (diffusers' res_skip_channels).
 */
public final class UpBlock2D {
    private final List<ResnetBlock2D> resnets = new ArrayList<>();
    private final List<Transformer2DModel> attentions = new ArrayList<>();
    private final Upsample2D upsampler;

    /** {@code inputs}: the hidden state entering each resnet before concatenation. */
    public record Act(List<Tensor> inputs, List<Tensor> skips, List<ResnetBlock2D.Act> resnets,
                      List<Transformer2DModel.Act> attentions, Upsample2D.Act upsample, Tensor out) {}

    public UpBlock2D(String name, boolean crossAttention, int layers, int in, int out, int prevOut, int tembChannels,
                     boolean addUpsample, int groups, float eps, int heads, int contextDim, int transformerLayers,
                     boolean linearProjection) {
        for (int i = 0; i < layers; i++) {
            int skipChannels = i == layers - 1 ? in : out;
            int hiddenChannels = i == 0 ? prevOut : out;
            resnets.add(new ResnetBlock2D(name + ".resnets." + i, hiddenChannels + skipChannels, out, tembChannels,
                    groups, eps, 1f));
            if (crossAttention) {
                attentions.add(new Transformer2DModel(name + ".attentions." + i, out, heads, out / heads, contextDim,
                        transformerLayers, groups, linearProjection));
            }
        }
        this.upsampler = addUpsample ? new Upsample2D(name + ".upsamplers.0", out) : null;
    }

    /** Number of skip connections this block consumes. */
    public int skipCount() { return resnets.size(); }

    public void declare(SequencedMap<String, int[]> shapes) {
        for (int i = 0; i < resnets.size(); i++) {
            resnets.get(i).declare(shapes);
            if (!attentions.isEmpty()) attentions.get(i).declare(shapes);
        }
        if (upsampler != null) upsampler.declare(shapes);
    }

    /**
     * skips: the skip connections in the order the resnets consume them (the latest down-block state first);
     * upsampleTo: the next up block's first skip, whose height and width the upsampler produces (null for the last).
     */
    public Act forward(Backend be, Weights p, Tensor x, List<Tensor> skips, Tensor upsampleTo, Tensor tembAct,
                       Tensor context, boolean train) {
        List<Tensor> inputs = new ArrayList<>();
        List<ResnetBlock2D.Act> ra = new ArrayList<>();
        List<Transformer2DModel.Act> ta = new ArrayList<>();
        Tensor h = x;
        for (int i = 0; i < resnets.size(); i++) {
            Tensor skip = skips.get(i);
            int n = h.dim(0), ch = h.dim(1), cs = skip.dim(1), hh = h.dim(2), ww = h.dim(3);
            inputs.add(h);
            try (Scope scope = Scope.unlessTraining(be, train)) {
                Tensor cat = be.zeros(n, ch + cs, hh, ww);
                be.concatChannels(cat, h, skip, n, ch, cs, hh * ww);
                ResnetBlock2D.Act r = resnets.get(i).forward(be, p, cat, tembAct);
                ra.add(r);
                h = r.out();
                scope.keep(h);
            }
            if (!attentions.isEmpty()) {
                Transformer2DModel.Act t = attentions.get(i).forward(be, p, h, context, train);
                ta.add(t);
                h = t.out();
            }
        }
        Upsample2D.Act up = null;
        if (upsampler != null) {
            up = upsampler.forward(be, p, h, upsampleTo.dim(2), upsampleTo.dim(3));
            h = up.out();
        }
        return new Act(inputs, List.copyOf(skips), ra, ta, up, h);
    }

    /** dx += ∂/∂x; dSkips.get(i) += ∂/∂skips.get(i). */
    public void backward(Backend be, Weights p, Weights g, Tensor dx, List<Tensor> dSkips, Tensor dTembAct,
                         Tensor dContext, Tensor dOut, Act a) {
        Tensor d = dOut;
        if (upsampler != null) {
            Tensor dPrev = be.zeros(a.upsample().x().shape());
            upsampler.backward(be, p, g, dPrev, d, a.upsample());
            d = dPrev;
        }
        for (int i = resnets.size() - 1; i >= 0; i--) {
            Tensor dResOut = d;
            if (!attentions.isEmpty()) {
                dResOut = be.zeros(d.shape());
                attentions.get(i).backward(be, p, g, dResOut, dContext, d, a.attentions().get(i));
            }
            ResnetBlock2D.Act r = a.resnets().get(i);
            Tensor dCat = be.zeros(r.x().shape());
            resnets.get(i).backward(be, p, g, dCat, dTembAct, dResOut, r);
            Tensor in = a.inputs().get(i);
            Tensor dIn = i > 0 ? be.zeros(in.shape()) : dx;
            int n = in.dim(0), ch = in.dim(1), cs = a.skips().get(i).dim(1), hw = in.dim(2) * in.dim(3);
            be.splitChannels(dIn, dSkips.get(i), dCat, n, ch, cs, hw);
            d = dIn;
        }
    }
}
