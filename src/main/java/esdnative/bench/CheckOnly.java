package esdnative.bench;

import esdnative.backend.cuda.CudaBackend;
import esdnative.backend.cuda.CudaLibraries;
import esdnative.esd.EsdTrainer;
import esdnative.util.UserError;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * {@code bench --backend cuda --check-only}: the CUDA backend on the project's fake driver in count-only mode
 * (kernels/fake-driver): every driver and cuBLAS call is checked as on a GPU (launch limits, GEMM arguments, ranges
 * inside allocations, the device's memory) and counted, but nothing is computed, so full-size shapes run in
 * seconds to minutes on any machine. The fake libraries are found beside the jar or the classes folder
 * ({@code target/fake-cuda}, where the build makes them) or in {@code $ESD_FAKE_CUDA}.
 */
final class CheckOnly {
    private final Path folder;
    private final MethodHandle counterNames;
    private final MethodHandle counters;

    private CheckOnly(Path folder, MethodHandle counterNames, MethodHandle counters) {
        this.folder = folder;
        this.counterNames = counterNames;
        this.counters = counters;
    }

    /**
     * Loads the fake driver in count-only mode (before JCuda loads and binds to it by its soname). Throws a
     * {@link UserError} when the fake libraries are not found.
     */
    @SuppressWarnings("restricted")
    static CheckOnly load() {
        Path folder = find();
        SymbolLookup driver = SymbolLookup.libraryLookup(folder.resolve(CudaLibraries.DRIVER), Arena.global());
        Linker linker = Linker.nativeLinker();
        MethodHandle setCountOnly = linker.downcallHandle(symbol(driver, "esdfake_set_count_only"),
                FunctionDescriptor.ofVoid(JAVA_INT));
        try {
            setCountOnly.invokeExact(1);
        } catch (Throwable t) {
            throw new IllegalStateException("the fake driver's count-only switch failed", t);
        }
        return new CheckOnly(folder, linker.downcallHandle(symbol(driver, "esdfake_counter_names"),
                FunctionDescriptor.of(ADDRESS)), linker.downcallHandle(symbol(driver, "esdfake_counters"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)));
    }

    /** A backend on the fake libraries, in the given math mode. */
    CudaBackend open(CudaBackend.MathMode math) {
        return new CudaBackend(math, new CudaLibraries(List.of(folder)));
    }

    Path folder() { return folder; }

    /** The fake driver's counters by name (launches, gemms, memsets, syncs, peak_bytes, rejected, ...). */
    Map<String, Long> counters() {
        try (Arena arena = Arena.ofConfined()) {
            String[] names = ((MemorySegment) counterNames.invokeExact()).reinterpret(4096).getString(0).split(",");
            MemorySegment values = arena.allocate(JAVA_LONG, names.length);
            int count = (int) counters.invokeExact(values, names.length);
            Map<String, Long> out = new LinkedHashMap<>();
            for (int i = 0; i < Math.min(count, names.length); i++) out.put(names[i], values.getAtIndex(JAVA_LONG, i));
            return out;
        } catch (Throwable t) {
            throw new IllegalStateException("reading the fake driver's counters failed", t);
        }
    }

    /**
     * Names the tensors that live through the run in the allocator's memory report (made before anyone labelled
     * allocations): the UNet's and the text encoder's weights, the trained copies, their gradients and Adam's moments.
     */
    static void labelLongLived(CudaBackend cuda, BenchModel m, EsdTrainer trainer) {
        m.unetWeights().buffers().forEach(t -> cuda.labelMemory(t, "unet weights"));
        if (m.textEncoder() != null) m.textEncoder().weights().buffers().forEach(t -> cuda.labelMemory(t, "text encoder"));
        trainer.subset().trained().buffers().forEach(t -> cuda.labelMemory(t, "trained copies"));
        trainer.subset().gradients().buffers().forEach(t -> cuda.labelMemory(t, "gradients"));
        for (int i = 0; i < trainer.adam().bufferCount(); i++) {
            cuda.labelMemory(trainer.adam().firstMoment(i), "adam moments");
            cuda.labelMemory(trainer.adam().secondMoment(i), "adam moments");
        }
    }

    /** $ESD_FAKE_CUDA, else fake-cuda beside the jar or the classes folder, else ./target/fake-cuda. */
    private static Path find() {
        List<Path> candidates = new ArrayList<>();
        String env = System.getenv("ESD_FAKE_CUDA");
        if (env != null && !env.isBlank()) candidates.add(Path.of(env));
        try {
            Path code = Path.of(CheckOnly.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            if (code.getParent() != null) candidates.add(code.getParent().resolve("fake-cuda"));
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            // no code location: the other candidates remain
        }
        candidates.add(Path.of("target", "fake-cuda"));
        for (Path c : candidates) {
            if (Files.isRegularFile(c.resolve(CudaLibraries.DRIVER)) && Files.isRegularFile(c.resolve("libcublas.so.13"))) {
                return c.toAbsolutePath();
            }
        }
        throw new UserError("--check-only: the fake CUDA libraries (libcuda.so.1, libcublas.so.13) are in none of "
                + candidates + "; the build makes them where g++ exists (kernels/fake-driver/build.sh), or set"
                + " ESD_FAKE_CUDA");
    }

    private static MemorySegment symbol(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new UserError("--check-only: " + name + " is missing: not the"
                + " project's fake driver"));
    }
}
