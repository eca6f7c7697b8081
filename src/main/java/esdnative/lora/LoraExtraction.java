package esdnative.lora;

import esdnative.backend.Backend;
import esdnative.io.DType;
import esdnative.io.Halfs;
import esdnative.model.Weights;

import java.util.ArrayList;
import java.util.List;
import java.util.SequencedCollection;

/**
 * A weight change as LoRA modules: for every changed 2-D weight (and 1×1 convolution, as 2-D) ΔW = W_edited − W_base
 * (m×n, float64) is factored as up (m×k) · down (k×n), k = min(rank, m, n), and stored with alpha = k, so that the
 * loaders' W + scale·(alpha/k)·up·down adds exactly up·down at scale 1.
 *
 * <ul>
 * <li>k &lt; min(m, n): truncated SVD ΔW ≈ U·S·Vᵀ ({@link Svd#truncated}), split up = U·√S, down = √S·Vᵀ so that both
 * factors have the same magnitude (kohya's extract_lora_from_models.py puts all of S in up and clamps outliers; we do
 * neither, float16 keeps more of a balanced split).</li>
 * <li>k = min(m, n) (e.g. rank "full"): ΔW exactly, as up = ΔW·2⁻ᵉ, down = 2ᵉ·I (or the transpose arrangement when m
 * &lt; n), 2ᵉ the power of two above max|ΔW|: scaling by a power of two is exact, and it lifts ΔW's small values out of
 * float16's subnormal range. An SVD of the same rank would only rotate the same product.</li>
 * </ul>
 * Every module's residual ‖ΔW − up·down‖_F / ‖ΔW‖_F is measured in float64 on the factors as stored (after rounding
 * to the file's dtype), beside the truncation alone (the factors before rounding). Changed tensors a LoRA cannot hold
 * (biases, norms, k×k convolutions) are listed with their largest |Δ|.
 */
public final class LoraExtraction {
    private LoraExtraction() {}

    /** The two models to compare, by diffusers UNet weight name. */
    public interface Pair {
        /** The tensors to compare, in model order. */
        SequencedCollection<String> names();

        int[] shape(String name);

        float[] base(String name);

        float[] edited(String name);

        /** How the file names the modules: the base UNet's convention (SD 1.x/2.x or SDXL, {@link KohyaNames}). */
        KohyaNames naming();

        /**
         * The edited tensors of {@code edited} (e.g. an ESD run's trained subset, or UCE's edited projections) against
         * the same names in {@code base} (the frozen model).
         */
        static Pair of(Backend be, Weights base, Weights edited) {
            return new Pair() {
                @Override public SequencedCollection<String> names() { return edited.asMap().sequencedKeySet(); }
                @Override public int[] shape(String name) { return edited.get(name).shape(); }
                @Override public float[] base(String name) { return be.toHost(base.get(name)); }
                @Override public float[] edited(String name) { return be.toHost(edited.get(name)); }
                @Override public KohyaNames naming() { return KohyaNames.forUnet(base.asMap().keySet()); }
            };
        }
    }

    /**
     * One LoRA module.
     *
     * @param weight     the diffusers weight name it changes
     * @param shape      that weight's shape ([m, n] or [m, n, 1, 1])
     * @param rank       k
     * @param up         m×k as stored (values exactly representable in the file's dtype)
     * @param down       k×n as stored
     * @param residual   ‖ΔW − up·down‖_F / ‖ΔW‖_F with the stored factors
     * @param truncation the same before rounding to the dtype: what the rank alone leaves out
     */
    public record Module(String weight, int[] shape, int rank, float[] up, float[] down, double residual, double truncation) {
        public int rows() { return shape[0]; }

        public int columns() { return shape[1]; }

        /** The stored tensors' shapes: 4-D for a 1×1 convolution, as kohya writes them. */
        public long[] upShape() { return shape.length == 4 ? new long[] {shape[0], rank, 1, 1} : new long[] {shape[0], rank}; }

        public long[] downShape() { return shape.length == 4 ? new long[] {rank, shape[1], 1, 1} : new long[] {rank, shape[1]}; }
    }

    /** A changed tensor that a LoRA cannot hold, and its largest absolute change. */
    public record Unexpressed(String name, int[] shape, double maxAbsDelta) {}

    /**
     * The modules (in model order), what could not be expressed, the settings they were made with, and the module
     * names' convention.
     */
    public record Result(List<Module> modules, List<Unexpressed> unexpressed, LoraSettings settings, KohyaNames naming) {
        /** The module with the largest residual, or null when nothing changed. */
        public Module worst() {
            Module w = null;
            for (Module m : modules) if (w == null || m.residual() > w.residual()) w = m;
            return w;
        }
    }

    public static Result extract(Pair pair, LoraSettings settings) {
        List<Module> modules = new ArrayList<>();
        List<Unexpressed> unexpressed = new ArrayList<>();
        for (String name : pair.names()) {
            int[] shape = pair.shape(name);
            float[] b = pair.base(name), e = pair.edited(name);
            double[] delta = new double[b.length];
            double maxAbs = 0;
            for (int i = 0; i < b.length; i++) {
                delta[i] = (double) e[i] - b[i];   // exact: the difference of two floats fits a double
                maxAbs = Math.max(maxAbs, Math.abs(delta[i]));
            }
            if (maxAbs == 0) continue;
            if (isMatrix(name, shape)) modules.add(factor(name, shape, delta, settings));
            else unexpressed.add(new Unexpressed(name, shape.clone(), maxAbs));
        }
        return new Result(List.copyOf(modules), List.copyOf(unexpressed), settings, pair.naming());
    }

    /** A weight of a linear layer, or of a 1×1 convolution. */
    static boolean isMatrix(String name, int[] shape) {
        if (!name.endsWith(".weight")) return false;
        return shape.length == 2 || (shape.length == 4 && shape[2] == 1 && shape[3] == 1);
    }

    static Module factor(String name, int[] shape, double[] delta, LoraSettings settings) {
        int m = shape[0], n = shape[1];
        int k = Math.min(settings.rank(), Math.min(m, n));
        double[] up, down;
        double truncation;
        if (k == Math.min(m, n)) {
            // exact split with a power-of-two scale: up·down = ΔW in any dtype that holds the scaled values
            double maxAbs = 0;
            for (double d : delta) maxAbs = Math.max(maxAbs, Math.abs(d));
            int e = Math.getExponent(maxAbs) + 1;
            double[] scaled = new double[delta.length];
            for (int i = 0; i < delta.length; i++) scaled[i] = Math.scalb(delta[i], -e);
            double[] identity = new double[k * k];
            for (int i = 0; i < k; i++) identity[i * k + i] = Math.scalb(1.0, e);
            up = n <= m ? scaled : identity;
            down = n <= m ? identity : scaled;
            truncation = 0;   // ΔW·2⁻ᵉ·2ᵉ is ΔW, in float64 too
        } else {
            Svd.Result svd = Svd.truncated(delta, m, n, k);
            up = new double[m * k];
            down = new double[k * n];
            for (int r = 0; r < k; r++) {
                double root = Math.sqrt(svd.s()[r]);
                for (int i = 0; i < m; i++) up[i * k + r] = svd.u()[i * k + r] * root;
                for (int j = 0; j < n; j++) down[r * n + j] = svd.vt()[r * n + j] * root;
            }
            truncation = residual(delta, Svd.multiply(up, m, k, down, n));
        }
        float[] upStored = stored(up, settings.dtype()), downStored = stored(down, settings.dtype());
        double residual = residual(delta, LowRank.product(upStored, downStored, m, k, n));
        return new Module(name, shape.clone(), k, upStored, downStored, residual, truncation);
    }

    /** ‖ΔW − P‖_F / ‖ΔW‖_F. */
    static double residual(double[] delta, double[] product) {
        double diff = 0, norm = 0;
        for (int i = 0; i < delta.length; i++) {
            double d = delta[i] - product[i];
            diff += d * d;
            norm += delta[i] * delta[i];
        }
        return Math.sqrt(diff / norm);
    }

    /** Values rounded to the dtype, as float32 (exact: F16 and BF16 values are floats). */
    static float[] stored(double[] x, DType dtype) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float f = (float) x[i];
            out[i] = switch (dtype) {
                case F16 -> Halfs.f16ToFloat(Halfs.floatToF16(f));
                case BF16 -> Halfs.bf16ToFloat(Halfs.floatToBf16(f));
                default -> f;
            };
        }
        return out;
    }
}
