package esdnative.selftest;

import esdnative.backend.Backend;
import esdnative.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;

/**
 * One backend operation with its tensors, run the same way on every backend the self-test compares.
 * Each tensor has a role: an {@link Role#INPUT} gets random values; an {@link Role#OUTPUT} starts as NaN, so
 * an element the op fails to write shows; an {@link Role#ACCUMULATOR} starts random and is compared after the op
 * (backward ops add into it; aliasing cases write it in place). Every tensor sits between NaN guard cells, so a
 * read past its end poisons the result and a write past it is caught.
 *
 * @param name      shown in the table, e.g. "conv2d 3x3 s2"
 * @param gemm          whether the op multiplies through GEMMs (checked again in strict float32 on the GPU)
 * @param tf32Tolerance the relative error allowed when the GPU's GEMMs run in TF32
 * @param bf16Tolerance the relative error allowed when they run on bf16 operands
 * @param tensors       the op's tensors, in declaration order
 * @param updates       outputs that are optimiser updates, compared element by element (see {@link UpdateCheck})
 *                      instead of by their relative error
 * @param body          runs the op on a backend; may return scalar results (e.g. the loss) to compare too
 */
public record OpCase(String name, boolean gemm, double tf32Tolerance, double bf16Tolerance, List<TensorSpec> tensors,
                     List<UpdateCheck> updates, Body body) {
    /** Float32 rounding only: both sides sum reductions in double, so what is left is ~1e-7. */
    public static final double FP32_TOLERANCE = 1e-5;
    /** One GEMM with TF32 inputs (10-bit mantissas). */
    public static final double TF32_TOLERANCE = 5e-3;
    /**
     * A whole model: tens of chained TF32 GEMMs, each adding its ~5e-4 relative rounding, so a network-level
     * relative error of a few 1e-3 is expected; strict float32 still has to meet {@link #FP32_TOLERANCE}.
     */
    public static final double TF32_MODEL_TOLERANCE = 3e-2;
    /**
     * One GEMM on bf16 operands: each rounded to 8 significant bits (at most 2^-9 relative), products and sums in
     * float32, so about 2e-3 relative on random operands. Measured on the fake driver, whose cuBLAS reads bf16
     * exactly ({@code selftest --backend cuda --precision bf16}, seed 1): 1.75e-3 to 2.47e-3 over the 21 GEMM and
     * convolution cases; the tolerance is 4× the largest.
     */
    public static final double BF16_TOLERANCE = 1e-2;
    /**
     * A whole model on bf16 operands, its frozen weights stored in bf16 and the trained ones float32. Measured on the
     * fake driver (seeds 1 and 2, three input sets each): the tiny UNet forward+backward (output, every weight's
     * gradient, the inputs' gradients) 4.5e-3 to 7.8e-3, the ESD-x step (loss, gradients, Adam's moments) 4.3e-3 to
     * 1.9e-2; the tolerance is about 2.5× the largest.
     */
    public static final double BF16_MODEL_TOLERANCE = 5e-2;

    /**
     * A first Adam step's update u = lr·g/(|g| + eps): ≈ lr·sign(g) where |g| ≫ eps, so its relative error says
     * nothing (the rounding of the smallest gradients flips whole steps). Compared instead element by element, where
     * the sign is decided: on the elements whose reference gradient is at least E = {@link #WELL_CONDITIONED} ×
     * tolerance × rms(g) (the gradient's allowed error, generously) from zero, |u − u_ref| may be what that error can
     * make of the update, lr·eps·E/(|g| + eps)² (|du/dg| times E; small where |g| ≫ eps), plus
     * {@link #UPDATE_TOLERANCE}·lr of rounding. The gradients themselves and Adam's moments are compared as usual.
     *
     * @param update    the output holding the parameters' change
     * @param gradients the output holding the gradients the update was made from
     * @param lr        the learning rate
     * @param eps       Adam's epsilon
     */
    public record UpdateCheck(String update, String gradients, float lr, float eps) {
        /** How many allowed gradient errors from zero an element's gradient must be for its sign to count. */
        public static final double WELL_CONDITIONED = 10;
        /**
         * In units of lr: the parameters' float32 rounding (half an ulp of a 0.08 weight is 3.7e-9, 3.7e-6 lr at
         * lr 1e-3) on both sides, with margin.
         */
        public static final double UPDATE_TOLERANCE = 1e-4;
    }

    /** The tolerance for a GPU run whose GEMMs are (or are not) TF32. */
    public double tolerance(boolean tf32) {
        return gemm && tf32 ? tf32Tolerance : FP32_TOLERANCE;
    }
    /** How a tensor is filled before the op and whether it is compared after. */
    public enum Role { INPUT, OUTPUT, ACCUMULATOR }

    /** A named tensor: its shape, role, and for random ones the uniform range of its values. */
    public record TensorSpec(String name, int[] shape, Role role, float low, float high) {
        public long size() { return Tensor.sizeOf(shape); }
    }

    /** The operation itself, on one backend, given its tensors by name. */
    @FunctionalInterface
    public interface Body {
        float[] run(Backend backend, Map<String, Tensor> t);
    }

    /** Starts a case; add tensors, then {@link Builder#run} or {@link Builder#scalar}. */
    public static Builder named(String name) {
        return new Builder(name, false, FP32_TOLERANCE, FP32_TOLERANCE);
    }

    /** Starts a case whose op multiplies through GEMMs. */
    public static Builder gemmNamed(String name) {
        return new Builder(name, true, TF32_TOLERANCE, BF16_TOLERANCE);
    }

    /** Starts a whole-model case (many chained GEMMs). */
    public static Builder modelNamed(String name) {
        return new Builder(name, true, TF32_MODEL_TOLERANCE, BF16_MODEL_TOLERANCE);
    }

    public static final class Builder {
        private final String name;
        private final boolean gemm;
        private final double tf32Tolerance;
        private final double bf16Tolerance;
        private final List<TensorSpec> tensors = new ArrayList<>();
        private final List<UpdateCheck> updates = new ArrayList<>();

        private Builder(String name, boolean gemm, double tf32Tolerance, double bf16Tolerance) {
            this.name = name;
            this.gemm = gemm;
            this.tf32Tolerance = tf32Tolerance;
            this.bf16Tolerance = bf16Tolerance;
        }

        /** A random input, uniform in [-1, 1). */
        public Builder in(String tensor, int... shape) {
            return inRange(tensor, -1f, 1f, shape);
        }

        /** A random input, uniform in [low, high). */
        public Builder inRange(String tensor, float low, float high, int... shape) {
            tensors.add(new TensorSpec(tensor, shape, Role.INPUT, low, high));
            return this;
        }

        /** An output the op overwrites (starts as NaN). */
        public Builder out(String tensor, int... shape) {
            tensors.add(new TensorSpec(tensor, shape, Role.OUTPUT, 0f, 0f));
            return this;
        }

        /** A tensor the op adds into or updates in place (starts uniform in [-1, 1)). */
        public Builder acc(String tensor, int... shape) {
            return accRange(tensor, -1f, 1f, shape);
        }

        /** A tensor the op adds into or updates in place, starting uniform in [low, high). */
        public Builder accRange(String tensor, float low, float high, int... shape) {
            tensors.add(new TensorSpec(tensor, shape, Role.ACCUMULATOR, low, high));
            return this;
        }

        /** An output the op overwrites with an Adam update made from output {@code gradients} (see {@link UpdateCheck}). */
        public Builder update(String tensor, String gradients, float lr, float eps, int... shape) {
            updates.add(new UpdateCheck(tensor, gradients, lr, eps));
            return out(tensor, shape);
        }

        /** An op with no scalar result. */
        public OpCase run(BiConsumer<Backend, Map<String, Tensor>> op) {
            return new OpCase(name, gemm, tf32Tolerance, bf16Tolerance, List.copyOf(tensors), List.copyOf(updates), (b, t) -> {
                op.accept(b, t);
                return new float[0];
            });
        }

        /** An op that returns one float (compared like an output). */
        public OpCase scalar(BiFunction<Backend, Map<String, Tensor>, Float> op) {
            return new OpCase(name, gemm, tf32Tolerance, bf16Tolerance, List.copyOf(tensors), List.copyOf(updates),
                    (b, t) -> new float[] {op.apply(b, t)});
        }
    }
}
