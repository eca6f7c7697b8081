package esdnative.lora;

import esdnative.io.DType;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SequencedCollection;

import static org.junit.jupiter.api.Assertions.*;

/** Factoring ΔW: exact at full rank, exact for a ΔW of rank ≤ R, residuals as measured, what cannot be a LoRA listed. */
class LoraExtractionTest {
    /** A pair of "models" with the given tensors: base random, edited = base + delta. */
    private static LoraExtraction.Pair pair(Map<String, int[]> shapes, Map<String, double[]> deltas, long seed) {
        Random rnd = new Random(seed);
        Map<String, float[]> base = new LinkedHashMap<>(), edited = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> {
            int size = 1;
            for (int d : shape) size *= d;
            float[] b = new float[size], e = new float[size];
            double[] delta = deltas.get(name);
            for (int i = 0; i < size; i++) {
                b[i] = (float) (0.1 * rnd.nextGaussian());
                e[i] = delta == null ? b[i] : (float) (b[i] + delta[i]);
            }
            base.put(name, b);
            edited.put(name, e);
        });
        return new LoraExtraction.Pair() {
            @Override public SequencedCollection<String> names() { return List.copyOf(shapes.keySet()); }
            @Override public int[] shape(String name) { return shapes.get(name); }
            @Override public float[] base(String name) { return base.get(name); }
            @Override public float[] edited(String name) { return edited.get(name); }
            @Override public KohyaNames naming() { return KohyaNames.DIFFUSERS; }
        };
    }

    private static double[] gaussian(int size, double scale, long seed) {
        Random rnd = new Random(seed);
        double[] x = new double[size];
        for (int i = 0; i < size; i++) x[i] = scale * rnd.nextGaussian();
        return x;
    }

    /** The edited tensor's ΔW as the extraction sees it (float32 edited minus float32 base, in float64). */
    private static double[] delta(LoraExtraction.Pair p, String name) {
        float[] b = p.base(name), e = p.edited(name);
        double[] d = new double[b.length];
        for (int i = 0; i < b.length; i++) d[i] = (double) e[i] - b[i];
        return d;
    }

    @Test
    void fullRankIsExactInFloat32AndFloat16RoundingAtMostInFloat16() {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("a.to_k.weight", new int[] {48, 20});   // tall
        shapes.put("a.to_q.weight", new int[] {20, 48});   // wide
        shapes.put("a.proj_in.weight", new int[] {24, 24, 1, 1});
        Map<String, double[]> deltas = new LinkedHashMap<>();
        deltas.put("a.to_k.weight", gaussian(48 * 20, 1e-3, 1));
        deltas.put("a.to_q.weight", gaussian(20 * 48, 1e-5, 2));   // small values: float16's subnormal range unscaled
        deltas.put("a.proj_in.weight", gaussian(24 * 24, 1e-2, 3));
        LoraExtraction.Pair p = pair(shapes, deltas, 9);
        for (DType dtype : new DType[] {DType.F32, DType.F16}) {
            LoraExtraction.Result r = LoraExtraction.extract(p, new LoraSettings(LoraSettings.FULL, dtype));
            assertEquals(3, r.modules().size());
            for (LoraExtraction.Module m : r.modules()) {
                assertEquals(Math.min(m.rows(), m.columns()), m.rank());
                double measured = LoraExtraction.residual(delta(p, m.weight()), LowRank.product(m.up(), m.down(), m.rows(), m.rank(), m.columns()));
                assertEquals(measured, m.residual(), 1e-15, m.weight());
                assertEquals(0, m.truncation());
                // float32 factors: ΔW (a difference of floats) scaled by a power of two is ΔW again, bit for bit, when
                // it is a float; float16: half an ulp of 2⁻¹¹ per value at most
                double bound = dtype == DType.F32 ? 6e-8 : Math.scalb(1.0, -11);
                assertTrue(m.residual() <= bound, m.weight() + " " + dtype + " residual " + m.residual());
            }
            assertArrayEquals(new long[] {24, 24, 1, 1}, r.modules().get(2).upShape());
        }
    }

    @Test
    void aDeltaOfRankAtMostRIsExactAtRankR() {
        int m = 160, n = 96;
        double[] lowRank = SvdTest.known(m, n, new double[] {2e-2, 1e-2, 5e-3}, 4);   // rank 3, as UCE's ΔW is ≤ #concepts
        Map<String, int[]> shapes = Map.of("b.to_v.weight", new int[] {m, n});
        LoraExtraction.Pair p = pair(shapes, Map.of("b.to_v.weight", lowRank), 5);
        LoraExtraction.Module mod = LoraExtraction.extract(p, new LoraSettings(8, DType.F32)).modules().getFirst();
        assertEquals(8, mod.rank());
        // the float32 ΔW is rank 3 up to its own rounding (2⁻²⁴ of the base weights ~0.1 against ΔW ~1e-3): not exactly
        // rank 3, so the truncation is that rounding's share beyond rank 8, far below 1e-4
        assertTrue(mod.truncation() < 1e-4, "truncation " + mod.truncation());
        assertTrue(mod.residual() < 1e-4, "residual " + mod.residual());
        double measured = LoraExtraction.residual(delta(p, mod.weight()), LowRank.product(mod.up(), mod.down(), m, 8, n));
        assertEquals(measured, mod.residual(), 1e-15);
    }

    @Test
    void aFullRankDeltaAtRank8ReportsItsTruncationTruthfully() {
        int m = 96, n = 80;
        Map<String, int[]> shapes = Map.of("c.to_out.0.weight", new int[] {m, n});
        LoraExtraction.Pair p = pair(shapes, Map.of("c.to_out.0.weight", gaussian(m * n, 1e-3, 6)), 7);
        LoraExtraction.Module mod = LoraExtraction.extract(p, new LoraSettings(8, DType.F16)).modules().getFirst();
        double[] d = delta(p, mod.weight());
        Svd.Result full = Svd.full(d, m, n);
        double dropped = 0, all = 0;
        for (int i = 0; i < full.k(); i++) {
            all += full.s()[i] * full.s()[i];
            if (i >= 8) dropped += full.s()[i] * full.s()[i];
        }
        assertEquals(Math.sqrt(dropped / all), mod.truncation(), 1e-9, "Eckart–Young");
        assertEquals(LoraExtraction.residual(d, LowRank.product(mod.up(), mod.down(), m, 8, n)), mod.residual(), 1e-15);
        assertTrue(mod.residual() >= mod.truncation() - 1e-6);
    }

    @Test
    void biasesNormsAndLargeKernelsAreListedNotFactored() {
        Map<String, int[]> shapes = new LinkedHashMap<>();
        shapes.put("d.to_out.0.bias", new int[] {16});
        shapes.put("d.conv1.weight", new int[] {8, 4, 3, 3});
        shapes.put("d.norm.weight", new int[] {16});
        shapes.put("d.to_k.weight", new int[] {16, 12});   // unchanged: no module
        Map<String, double[]> deltas = new LinkedHashMap<>();
        double[] bias = new double[16];
        bias[5] = -0.25;
        deltas.put("d.to_out.0.bias", bias);
        deltas.put("d.conv1.weight", gaussian(8 * 4 * 9, 1e-3, 8));
        LoraExtraction.Result r = LoraExtraction.extract(pair(shapes, deltas, 1), LoraSettings.defaults());
        assertTrue(r.modules().isEmpty());
        assertNull(r.worst());
        assertEquals(List.of("d.to_out.0.bias", "d.conv1.weight"), r.unexpressed().stream().map(LoraExtraction.Unexpressed::name).toList());
        assertEquals(0.25, r.unexpressed().getFirst().maxAbsDelta(), 1e-7);
    }

    @Test
    void kohyaNamesFollowTheDiffusersModulePath() {
        assertEquals("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
                KohyaNames.DIFFUSERS.module("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
        assertEquals("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0",
                KohyaNames.DIFFUSERS.module("mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight"));
    }
}
