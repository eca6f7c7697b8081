package esdnative.lora;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.model.Weights;
import esdnative.tensor.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * Applies a kohya-convention LoRA file ({@link KohyaNames}) to a UNet's weights at load time, as AUTOMATIC1111 and
 * ComfyUI merge one (an SDXL UNet takes sd-scripts' original-layout module names and, as ComfyUI does, the diffusers
 * paths): W += scale · (alpha / k) · up · down for each module, up·down summed in float64. A module without
 * {@code .alpha} has alpha = k. Keys this cannot apply (text-encoder modules, LyCORIS/LoCon variants, ComfyUI's
 * {@code .diff}/{@code .diff_b}) are refused rather than skipped, so a model is never silently half-changed.
 */
public final class LoraApplier {
    private LoraApplier() {}

    /** A LoRA file and the scale to apply it at ("FILE" or "FILE:SCALE"). */
    public record Spec(Path file, float scale) {
        /** Parses FILE[:SCALE]. */
        public static Spec parse(String text) {
            int colon = text.lastIndexOf(':');
            if (colon > 0) {
                try {
                    float scale = Float.parseFloat(text.substring(colon + 1));
                    if (!Float.isFinite(scale)) throw new UserError("scale of " + text + " is not finite");
                    return new Spec(Path.of(text.substring(0, colon)), scale);
                } catch (NumberFormatException e) {
                    // no scale: a path with a colon in it
                }
            }
            return new Spec(Path.of(text), 1f);
        }
    }

    private record Factors(String module, float[] down, long[] downShape, float[] up, long[] upShape, float alpha) {}

    /** Adds the file's modules, times {@code scale}, to {@code unet}'s weights; returns how many modules were applied. */
    public static int apply(Backend be, Weights unet, Spec spec) {
        Path file = spec.file();
        if (!Files.isRegularFile(file)) throw new UserError(file + " not found");
        // the model's convention (SDXL: the original layout's names), and the diffusers paths as ComfyUI also takes them
        var names = unet.asMap().keySet();
        Map<String, String> weightOf = new HashMap<>(KohyaNames.DIFFUSERS.modulesOf(names));
        weightOf.putAll(KohyaNames.forUnet(names).modulesOf(names));
        Map<String, Factors> modules = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            TreeSet<String> moduleNames = new TreeSet<>();
            for (String key : f.names()) {
                int dot = key.indexOf('.');
                String module = dot < 0 ? key : key.substring(0, dot), suffix = dot < 0 ? "" : key.substring(dot);
                if (!module.startsWith(KohyaNames.UNET_PREFIX)) {
                    throw new UserError(file + ": key " + key + ": only UNet modules (lora_unet_*) can be applied"
                            + (module.startsWith("lora_te") ? "; text-encoder LoRAs are not supported" : ""));
                }
                if (!suffix.equals(KohyaNames.DOWN) && !suffix.equals(KohyaNames.UP) && !suffix.equals(KohyaNames.ALPHA)) {
                    throw new UserError(file + ": key " + key + " is not a LoRA down/up/alpha tensor (LyCORIS and diff keys are not supported)");
                }
                moduleNames.add(module);
            }
            for (String module : moduleNames) {
                String down = module + KohyaNames.DOWN, up = module + KohyaNames.UP, alpha = module + KohyaNames.ALPHA;
                if (!f.names().contains(down) || !f.names().contains(up)) {
                    throw new UserError(file + ": module " + module + " lacks its lora_down or lora_up weight");
                }
                long[] ds = f.shape(down);
                float a = f.names().contains(alpha) ? f.readFloats(alpha)[0] : (float) ds[0];
                modules.put(module, new Factors(module, f.readFloats(down), ds, f.readFloats(up), f.shape(up), a));
            }
        }
        for (Factors fa : modules.values()) {
            String weight = weightOf.get(fa.module());
            if (weight == null) throw new UserError(file + ": module " + fa.module() + " is not a weight of this model's UNet");
            add(be, unet.get(weight), fa, spec.scale(), file);
        }
        return modules.size();
    }

    private static void add(Backend be, Tensor w, Factors fa, float scale, Path file) {
        int[] ws = w.shape();
        boolean matrix = ws.length == 2 || (ws.length == 4 && ws[2] == 1 && ws[3] == 1);
        long[] ds = fa.downShape(), us = fa.upShape();
        boolean shapesFit = matrix && ds.length == ws.length && us.length == ws.length
                && us[0] == ws[0] && ds[1] == ws[1] && us[1] == ds[0] && (ws.length == 2 || (ds[2] == 1 && ds[3] == 1 && us[2] == 1 && us[3] == 1));
        if (!shapesFit) {
            throw new UserError(file + ": module " + fa.module() + ": up " + Arrays.toString(us) + " · down "
                    + Arrays.toString(ds) + " does not fit the weight " + Arrays.toString(ws));
        }
        int m = ws[0], n = ws[1], k = (int) ds[0];
        double[] delta = LowRank.product(fa.up(), fa.down(), m, k, n);
        double factor = (double) scale * fa.alpha() / k;
        float[] values = be.toHost(w);
        for (int i = 0; i < values.length; i++) values[i] = (float) (values[i] + factor * delta[i]);
        be.copyFromHost(w, values, 0);
    }
}
