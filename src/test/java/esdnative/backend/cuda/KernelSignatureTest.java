package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The build compiled every kernels/*.cu to PTX, and the Java side's parameter lists ({@link Kernel}) match the
 * PTX entries exactly (an int where the kernel takes a 64-bit count would read garbage on the GPU). No GPU needed.
 */
class KernelSignatureTest {

    @Test
    void everySourceFileWasCompiledToPtx() throws IOException {
        assumePtxBuilt();
        try (Stream<Path> sources = Files.list(Path.of("kernels"))) {
            List<String> modules = sources.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu"))
                    .map(n -> n.substring(0, n.length() - 3)).toList();
            assertTrue(modules.size() >= 10, "kernel sources: " + modules);
            for (String m : modules) assertTrue(Ptx.read(m).isPresent(), m + ".ptx missing from the build output");
        }
    }

    @Test
    void javaSignaturesMatchThePtx() {
        assumePtxBuilt();
        for (Kernel k : Kernel.values()) {
            Map<String, List<String>> entries = Ptx.entries(Ptx.read(k.module).orElseThrow());
            Ptx.checkSignature(k, entries);
        }
    }

    @Test
    void everyPtxEntryIsUsedByTheBackend() {
        assumePtxBuilt();
        Set<String> modules = Arrays.stream(Kernel.values()).map(k -> k.module).collect(Collectors.toSet());
        Set<String> declared = Arrays.stream(Kernel.values()).map(k -> k.module + "." + k.entry)
                .collect(Collectors.toCollection(TreeSet::new));
        Set<String> compiled = new TreeSet<>();
        for (String m : modules) {
            for (String entry : Ptx.entries(Ptx.read(m).orElseThrow()).keySet()) compiled.add(m + "." + entry);
        }
        assertEquals(declared, compiled);
    }

    @Test
    void aMismatchIsReported() {
        Map<String, List<String>> entries = Ptx.entries("""
                .visible .entry axpy(
                	.param .u64 axpy_param_0,
                	.param .f32 axpy_param_1,
                	.param .u64 axpy_param_2,
                	.param .u32 axpy_param_3
                )
                """);
        assertEquals(List.of("u64", "f32", "u64", "u32"), entries.get("axpy"));
        CudaException e = assertThrows(CudaException.class, () -> Ptx.checkSignature(Kernel.AXPY, entries));
        assertTrue(e.getMessage().contains("[u64, f32, u64, u32]"), e.getMessage());
        assertThrows(CudaException.class, () -> Ptx.checkSignature(Kernel.ADD, entries));
    }

    private static void assumePtxBuilt() {
        boolean built = Ptx.read("arithmetic").isPresent();
        if (!built) System.out.println("KernelSignatureTest skipped: no PTX in the build (nvcc was not found)");
        assumeTrue(built, "no PTX in the build output (nvcc was not found)");
    }
}
