package esdnative.lora;

import com.fasterxml.jackson.databind.node.ObjectNode;
import esdnative.util.UserError;
import esdnative.io.Json;
import esdnative.io.SafetensorsWriter;
import esdnative.io.SafetensorsWriter.Entry;
import esdnative.lora.LoraExtraction.Module;
import esdnative.lora.LoraExtraction.Result;
import esdnative.lora.LoraExtraction.Unexpressed;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SequencedMap;

/**
 * Writes LoRA modules as one safetensors file in the kohya/sd-scripts convention ({@link KohyaNames}; SD 1.x/2.x
 * or SDXL names, as the result says): per module
 * {@code .lora_down.weight} [k, n] (or [k, n, 1, 1]), {@code .lora_up.weight} [m, k] (or [m, k, 1, 1]) and a scalar
 * {@code .alpha} = k, all in the settings' dtype. Tensors a LoRA cannot hold are not written (diffusers 0.21.4 refuses a
 * file with any other key, e.g. ComfyUI's {@code .diff_b}); they are listed in the metadata with their max |Δ|.
 *
 * <p>Metadata: sd-scripts' {@code ss_network_module}, {@code ss_network_dim}, {@code ss_network_alpha},
 * {@code ss_sd_model_name}, {@code ss_sd_model_hash}, {@code ss_new_sd_model_hash}, {@code ss_output_name}; ours
 * under {@code esd.lora.*}: the requested rank, dtype, per-module rank/residual/truncation (JSON), the worst residual
 * and module, and the unexpressed tensors (JSON); plus the caller's (method, concepts, ...).
 *
 * <p>How a method writes its result as a LoRA: {@code LoraWriter.write(out, LoraExtraction.extract(
 * LoraExtraction.Pair.of(be, frozenUnetWeights, editedTensors), settings), modelSourcePath, metadata)}.
 */
public final class LoraWriter {
    private LoraWriter() {}

    /**
     * Writes {@code result} to {@code out} (atomically; an existing file is replaced, so check before any work) and
     * returns the metadata written.
     *
     * @param baseModel the model the LoRA applies to (a diffusers folder or a single file), hashed for the metadata
     * @param extra     the caller's metadata (e.g. esd.method, esd.concepts), written after ours
     */
    public static Map<String, String> write(Path out, Result result, Path baseModel, Map<String, String> extra) {
        if (result.modules().isEmpty()) {
            throw new UserError("nothing to write as a LoRA: no changed 2-D weight"
                    + (result.unexpressed().isEmpty() ? "" : " (changed, and not expressible: " + names(result.unexpressed()) + ")"));
        }
        SequencedMap<String, Entry> entries = new LinkedHashMap<>();
        for (Module m : result.modules()) {
            String key = result.naming().module(m.weight());
            entries.put(key + KohyaNames.DOWN, Entry.floats(result.settings().dtype(), m.downShape(), m.down()));
            entries.put(key + KohyaNames.UP, Entry.floats(result.settings().dtype(), m.upShape(), m.up()));
            entries.put(key + KohyaNames.ALPHA, Entry.floats(result.settings().dtype(), new long[0], new float[] {m.rank()}));
        }
        Map<String, String> meta = metadata(out, result, ModelHash.of(baseModel), extra);
        SafetensorsWriter.write(out, entries, meta);
        return meta;
    }

    static Map<String, String> metadata(Path out, Result result, ModelHash base, Map<String, String> extra) {
        Map<String, String> m = new LinkedHashMap<>();
        int maxRank = result.modules().stream().mapToInt(Module::rank).max().orElse(0);
        m.put("format", "pt");
        m.put("ss_network_module", "networks.lora");
        m.put("ss_network_dim", Integer.toString(maxRank));
        m.put("ss_network_alpha", Integer.toString(maxRank));   // alpha = rank per module: scale 1
        m.put("ss_sd_model_name", base.file().getFileName().toString());
        m.put("ss_sd_model_hash", base.legacy());
        m.put("ss_new_sd_model_hash", base.sha256());
        m.put("ss_output_name", out.getFileName().toString().replaceAll("\\.safetensors$", ""));
        m.put("esd.lora.rank", result.settings().rankText());
        m.put("esd.lora.dtype", result.settings().dtype().safetensorsName());
        ObjectNode residuals = Json.mapper().createObjectNode();
        for (Module mod : result.modules()) {
            ObjectNode r = residuals.putObject(mod.weight());
            r.put("rank", mod.rank());
            r.put("residual", mod.residual());
            r.put("truncation", mod.truncation());
        }
        m.put("esd.lora.residuals", residuals.toString());
        Module worst = result.worst();
        m.put("esd.lora.worst_residual", Double.toString(worst.residual()));
        m.put("esd.lora.worst_module", worst.weight());
        ObjectNode unexpressed = Json.mapper().createObjectNode();
        for (Unexpressed u : result.unexpressed()) unexpressed.put(u.name(), u.maxAbsDelta());
        m.put("esd.lora.unexpressed", unexpressed.toString());
        extra.forEach(m::putIfAbsent);
        return m;
    }

    /** Lines for the log: one per module and per unexpressed tensor, then a summary. */
    public static List<String> report(Result result) {
        List<String> lines = new ArrayList<>();
        for (Module m : result.modules()) {
            lines.add(String.format(Locale.ROOT, "lora %s [%s] rank %d residual %.3e (truncation %.3e)",
                    m.weight(), shape(m.shape()), m.rank(), m.residual(), m.truncation()));
        }
        for (Unexpressed u : result.unexpressed()) {
            lines.add(String.format(Locale.ROOT, "not in the LoRA: %s [%s] changed by max |Δ| %.3e", u.name(), shape(u.shape()), u.maxAbsDelta()));
        }
        Module worst = result.worst();
        if (worst != null) {
            lines.add(String.format(Locale.ROOT, "%d modules, rank %s, %s; worst residual %.3e (%s)%s", result.modules().size(),
                    result.settings().rankText(), result.settings().dtype().safetensorsName(), worst.residual(), worst.weight(),
                    result.unexpressed().isEmpty() ? "" : "; " + result.unexpressed().size() + " changed tensors not expressible as LoRA"));
        }
        return lines;
    }

    private static String shape(int[] s) {
        StringBuilder b = new StringBuilder();
        for (int d : s) b.append(b.isEmpty() ? "" : "×").append(d);
        return b.toString();
    }

    private static String names(List<Unexpressed> list) {
        List<String> n = new ArrayList<>();
        for (Unexpressed u : list) n.add(u.name());
        return String.join(", ", n.size() > 5 ? n.subList(0, 5) : n) + (n.size() > 5 ? ", ..." : "");
    }
}
