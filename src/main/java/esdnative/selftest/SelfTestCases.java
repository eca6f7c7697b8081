package esdnative.selftest;

import esdnative.backend.Backend;
import esdnative.esd.EsdLoss;
import esdnative.esd.TrainableSubset;
import esdnative.model.Weights;
import esdnative.model.unet.UNet2DConditionModel;
import esdnative.model.nn.Params;
import esdnative.model.unet.UNetConfig;
import esdnative.model.unet.UNetWeights;
import esdnative.optim.Adam;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;

/** Everything the self-test runs: the single ops, then whole-model checks. */
public final class SelfTestCases {
    private SelfTestCases() {}

    public static List<OpCase> all() {
        List<OpCase> cases = new ArrayList<>(OpCases.all());
        cases.addAll(modelCases());
        return cases;
    }

    // tiny-sd-a's UNet with random weights (no fixture needed where the check runs), batch 2, 16×16 latents
    private static final UNetConfig TINY = UNetConfig.tiny();
    private static final int TOKENS = 7;
    private static final float WEIGHT_RANGE = 0.08f; // keeps activations O(1) through the random network
    /** Each whole-model case runs on this many sets of inputs (the seed mixes in the case's name). */
    static final int MODEL_INPUT_SETS = 3;
    private static final float LR = 1e-3f;
    private static final Adam.Config ADAM = Adam.Config.torchDefaults(LR);

    /**
     * A UNet forward and backward on a tiny model, and one ESD-x step (loss, gradients, Adam's moments and update),
     * each on {@link #MODEL_INPUT_SETS} sets of random inputs: one set may pass by luck where another does not.
     */
    static List<OpCase> modelCases() {
        List<OpCase> cases = new ArrayList<>();
        for (int set = 1; set <= MODEL_INPUT_SETS; set++) cases.addAll(modelCases(" #" + set));
        return cases;
    }

    private static List<OpCase> modelCases(String suffix) {
        SequencedMap<String, int[]> shapes = UNet2DConditionModel.parameterShapes(TINY);
        int params = (int) Weights.elementCount(shapes);
        int ctx = TINY.crossAttentionDim().getFirst();

        OpCase unet = OpCase.modelNamed("unet tiny forward+backward b2" + suffix)
                .inRange("weights", -WEIGHT_RANGE, WEIGHT_RANGE, params)
                .in("latents", 2, 4, 16, 16).in("context", 2, TOKENS, ctx).in("dEps", 2, 4, 16, 16)
                .out("eps", 2, 4, 16, 16).out("grads", params).out("dLatents", 2, 4, 16, 16).out("dContext", 2, TOKENS, ctx)
                .run((be, t) -> {
                    UNet2DConditionModel model = new UNet2DConditionModel(TINY);
                    Weights w = ownCopy(be, t.get("weights"), shapes);
                    UNetWeights.freeze(be, w, name -> true); // as generate does (bf16: stored in bfloat16)
                    for (String g : List.of("grads", "dLatents", "dContext")) be.fill(t.get(g), 0f);
                    var acts = model.forward(be, w, t.get("latents"), new float[] {981, 1}, t.get("context"));
                    be.copy(t.get("eps"), acts.output());
                    model.backward(be, w, Weights.over(t.get("grads"), shapes), acts, t.get("dEps"), t.get("dLatents"),
                            t.get("dContext"));
                });

        SequencedMap<String, int[]> trained = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> {
            if (name.contains("attn2")) trained.put(name, shape);
        });
        int trainedCount = (int) Weights.elementCount(trained);
        // the first Adam update is lr·g/(|g| + eps): compared where the gradient's sign is clear (OpCase.UpdateCheck);
        // the moments m = (1-β1)·g and v = (1-β2)·g² are well-conditioned and compared as usual
        OpCase esd = OpCase.modelNamed("esd-x step tiny (loss, grads, adam)" + suffix)
                .inRange("weights", -WEIGHT_RANGE, WEIGHT_RANGE, params)
                .in("z", 1, 4, 16, 16).in("embNull", 1, TOKENS, ctx).in("embConcept", 1, TOKENS, ctx)
                .out("grads", trainedCount).out("adamM", trainedCount).out("adamV", trainedCount)
                .update("update", "grads", LR, ADAM.eps(), trainedCount)
                .scalar((be, t) -> {
                    UNet2DConditionModel model = new UNet2DConditionModel(TINY);
                    Weights frozen = ownCopy(be, t.get("weights"), shapes);
                    TrainableSubset subset = TrainableSubset.select(be, frozen, trained::containsKey);
                    UNetWeights.freeze(be, frozen, name -> !trained.containsKey(name)); // as EsdTrainer does
                    EsdLoss.Result r = EsdLoss.compute(be, model, frozen, subset.trainable(), subset.gradients(),
                            t.get("z"), 500, t.get("embNull"), t.get("embConcept"), 1f);
                    be.copy(t.get("grads"), subset.gradients().flat());
                    Tensor before = be.zeros(trainedCount);
                    be.copy(before, subset.trained().flat());
                    Adam adam = new Adam(be, subset.trained(), ADAM);
                    adam.step(be, subset.trained(), subset.gradients());
                    be.copy(t.get("adamM"), adam.firstMoment());
                    be.copy(t.get("adamV"), adam.secondMoment());
                    be.linearCombination(t.get("update"), 1f, subset.trained().flat(), -1f, before, trainedCount);
                    return r.loss();
                });
        return List.of(unet, esd);
    }

    /**
     * The case's weights in a buffer of their own, which the body may freeze ({@code Backend#freezeWeights}; CUDA in
     * bf16 then holds them as bfloat16): the harness's input buffer stays float32, for its guard-cell checks.
     */
    private static Weights ownCopy(Backend be, Tensor weights, SequencedMap<String, int[]> shapes) {
        return Weights.over(Params.copyOf(be, weights), shapes);
    }
}
