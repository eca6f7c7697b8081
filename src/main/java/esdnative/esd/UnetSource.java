package esdnative.esd;

import esdnative.cli.UserError;
import esdnative.io.SafetensorsFile;
import esdnative.io.TensorInfo;
import esdnative.model.StableDiffusion;
import esdnative.weights.CompVisNames;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** The source checkpoint's UNet tensors by diffusers name, whatever its layout: dtype, shape and raw bytes. */
final class UnetSource implements AutoCloseable {
    private final SafetensorsFile file;
    private final Map<String, String> fileNames; // diffusers name → name in the file

    private UnetSource(SafetensorsFile file, Map<String, String> fileNames) {
        this.file = file;
        this.fileNames = fileNames;
    }

    static UnetSource open(StableDiffusion model) {
        Map<String, String> names = new HashMap<>();
        if (model.layout() == StableDiffusion.Layout.DIFFUSERS) {
            Path dir = model.source().resolve("unet");
            Path p = dir.resolve("diffusion_pytorch_model.safetensors");
            if (!Files.isRegularFile(p)) p = dir.resolve("diffusion_pytorch_model.fp16.safetensors");
            SafetensorsFile f = SafetensorsFile.open(p);
            f.names().forEach(n -> names.put(n, n));
            return new UnetSource(f, names);
        }
        SafetensorsFile f = SafetensorsFile.open(model.source());
        CompVisNames table = CompVisNames.of(CompVisNames.Topology.fromCompVis(f.names()));
        for (String n : f.names()) {
            CompVisNames.DiffusersName d = table.toDiffusers(n);
            if (d != null && d.component() == CompVisNames.Component.UNET) names.put(d.name(), n);
        }
        return new UnetSource(f, names);
    }

    TensorInfo info(String diffusersName) {
        String n = fileNames.get(diffusersName);
        if (n == null) throw new UserError(file.path() + ": UNet tensor " + diffusersName + " vanished from the source");
        return file.info(n);
    }

    MemorySegment raw(String diffusersName) {
        return file.raw(info(diffusersName).name());
    }

    @Override
    public void close() { file.close(); }
}
