package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.SequencedMap;

/** diffusers' UNetMidBlock2DCrossAttn with one layer: resnets.0 → attentions.0 → resnets.1, channels unchanged. */
public final class MidBlock2DCrossAttn {
    private final ResnetBlock2D resnet0;
    private final Transformer2DModel attention;
    private final ResnetBlock2D resnet1;

    public record Act(ResnetBlock2D.Act r0, Transformer2DModel.Act attn, ResnetBlock2D.Act r1) {
        public Tensor out() { return r1.out(); }
    }

    public MidBlock2DCrossAttn(String name, int channels, int tembChannels, int groups, float eps, float outputScale,
                               int heads, int contextDim, int transformerLayers, boolean linearProjection) {
        this.resnet0 = new ResnetBlock2D(name + ".resnets.0", channels, channels, tembChannels, groups, eps, outputScale);
        this.attention = new Transformer2DModel(name + ".attentions.0", channels, heads, channels / heads, contextDim,
                transformerLayers, groups, linearProjection);
        this.resnet1 = new ResnetBlock2D(name + ".resnets.1", channels, channels, tembChannels, groups, eps, outputScale);
    }

    public void declare(SequencedMap<String, int[]> shapes) {
        resnet0.declare(shapes);
        attention.declare(shapes);
        resnet1.declare(shapes);
    }

    public Act forward(Backend be, Weights p, Tensor x, Tensor tembAct, Tensor context, boolean train) {
        ResnetBlock2D.Act r0 = resnet0.forward(be, p, x, tembAct);
        Transformer2DModel.Act t = attention.forward(be, p, r0.out(), context, train);
        return new Act(r0, t, resnet1.forward(be, p, t.out(), tembAct));
    }

    public void backward(Backend be, Weights p, Weights g, Tensor dx, Tensor dTembAct, Tensor dContext,
                         Tensor dOut, Act a) {
        try (Scope scope = be.openScope()) { // the gradients made here are recycled once dx has its share
            Tensor dAttnOut = be.zeros(dOut.shape());
            resnet1.backward(be, p, g, dAttnOut, dTembAct, dOut, a.r1());
            Tensor dR0Out = be.zeros(dOut.shape());
            attention.backward(be, p, g, dR0Out, dContext, dAttnOut, a.attn());
            resnet0.backward(be, p, g, dx, dTembAct, dR0Out, a.r0());
        }
    }
}
