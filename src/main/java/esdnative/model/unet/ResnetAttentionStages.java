package esdnative.model.unet;

import esdnative.backend.Backend;
import esdnative.backend.Scope;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedMap;
import java.util.function.BiFunction;
import java.util.function.IntFunction;
import java.util.function.IntUnaryOperator;

/**
 * The stage loop diffusers' down and up blocks share: {@code layers} × (ResnetBlock2D [→ Transformer2DModel]),
 * named {@code name.resnets.i} and {@code name.attentions.i}. The blocks differ only in what enters each resnet
 * (a down block: the previous stage's output; an up block: that, concatenated with a skip connection), which
 * they pass in as functions of the stage index.
 */
final class ResnetAttentionStages {
    private final List<ResnetBlock2D> resnets = new ArrayList<>();
    private final List<Transformer2DModel> attentions = new ArrayList<>();

    /** One stage's activations; {@code attention} is null in a block without attentions. */
    record Act(ResnetBlock2D.Act resnet, Transformer2DModel.Act attention) {
        Tensor out() { return attention != null ? attention.out() : resnet.out(); }
    }

    /**
     * @param resnetIn       resnet i's input channels
     * @param crossAttention whether each resnet is followed by a Transformer2DModel
     */
    ResnetAttentionStages(String name, int layers, IntUnaryOperator resnetIn, int out, int tembChannels,
                          int groups, float eps, boolean crossAttention, int heads, int contextDim,
                          int transformerLayers, boolean linearProjection) {
        for (int i = 0; i < layers; i++) {
            resnets.add(new ResnetBlock2D(name + ".resnets." + i, resnetIn.applyAsInt(i), out, tembChannels, groups, eps, 1f));
            if (crossAttention) {
                attentions.add(new Transformer2DModel(name + ".attentions." + i, out, heads, out / heads, contextDim,
                        transformerLayers, groups, linearProjection));
            }
        }
    }

    int size() { return resnets.size(); }

    void declare(SequencedMap<String, int[]> shapes) {
        for (int i = 0; i < resnets.size(); i++) {
            resnets.get(i).declare(shapes);
            if (!attentions.isEmpty()) attentions.get(i).declare(shapes);
        }
    }

    /**
     * Runs every stage from x; {@code input.apply(i, h)} makes resnet i's input from the previous stage's output h
     * (x for stage 0). In inference ({@code !train}) what resnet i and its input needed is recycled once it ran.
     */
    List<Act> forward(Backend be, Weights p, Tensor x, BiFunction<Integer, Tensor, Tensor> input, Tensor tembAct,
                      Tensor context, boolean train) {
        List<Act> acts = new ArrayList<>();
        Tensor h = x;
        for (int i = 0; i < resnets.size(); i++) {
            ResnetBlock2D.Act r;
            try (Scope scope = Scope.unlessTraining(be, train)) {
                r = resnets.get(i).forward(be, p, input.apply(i, h), tembAct);
                scope.keep(r.out());
            }
            Transformer2DModel.Act t = attentions.isEmpty() ? null
                    : attentions.get(i).forward(be, p, r.out(), context, train);
            Act a = new Act(r, t);
            acts.add(a);
            h = a.out();
        }
        return acts;
    }

    /**
     * Walks the stages back from dOut, the gradient of the last stage's output. Resnet i's input gradient
     * accumulates into {@code inputGradient.apply(i)}; {@code previousGradient.apply(i, that)} turns it into the
     * gradient of the previous stage's output (for stage 0: of the block's input; its result is not used).
     */
    void backward(Backend be, Weights p, Weights g, Tensor dTembAct, Tensor dContext, Tensor dOut, List<Act> acts,
                  IntFunction<Tensor> inputGradient, BiFunction<Integer, Tensor, Tensor> previousGradient) {
        Tensor d = dOut;
        for (int i = resnets.size() - 1; i >= 0; i--) {
            // d: the gradient of stage i's output
            Tensor dIn = inputGradient.apply(i);
            try (Scope scope = be.openScope()) { // the gradient of the resnet's output is recycled once used
                Tensor dResOut = d;
                if (!attentions.isEmpty()) {
                    dResOut = be.zeros(d.shape());
                    attentions.get(i).backward(be, p, g, dResOut, dContext, d, acts.get(i).attention());
                }
                resnets.get(i).backward(be, p, g, dIn, dTembAct, dResOut, acts.get(i).resnet());
            }
            d = previousGradient.apply(i, dIn);
        }
    }
}
