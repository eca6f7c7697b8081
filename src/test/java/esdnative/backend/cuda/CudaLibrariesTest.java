package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Library discovery on fake library files (the files are found, never loaded). */
class CudaLibrariesTest {

    @Test
    void cublas13IsPreferredAndItsLtIsTakenFromTheSameFolder(@TempDir Path dir) throws IOException {
        Path old = Files.createDirectories(dir.resolve("old")), cuda13 = Files.createDirectories(dir.resolve("new"));
        Files.createFile(old.resolve("libcublas.so.12"));
        Files.createFile(old.resolve("libcublasLt.so.12"));
        Files.createFile(cuda13.resolve("libcublas.so.13"));
        Files.createFile(cuda13.resolve("libcublasLt.so.13"));
        Cublas.Files found = new CudaLibraries(List.of(old, cuda13)).cublas();
        assertEquals(cuda13.resolve("libcublas.so.13").toString(), found.cublas());
        assertEquals(cuda13.resolve("libcublasLt.so.13").toString(), found.cublasLt());
    }

    @Test
    void cublas12WithoutLtBesideIt(@TempDir Path dir) throws IOException {
        Files.createFile(dir.resolve("libcublas.so.12"));
        Cublas.Files found = new CudaLibraries(List.of(dir)).cublas();
        assertEquals(dir.resolve("libcublas.so.12").toString(), found.cublas());
        assertNull(found.cublasLt());
    }

    @Test
    void environmentFoldersComeFirstAndMissingOnesAreDropped(@TempDir Path dir) throws IOException {
        Path a = Files.createDirectories(dir.resolve("a")), b = Files.createDirectories(dir.resolve("b"));
        Map<String, String> env = Map.of(
                "ESD_CUDA_LIBS", a + File.pathSeparator + dir.resolve("missing"),
                "LD_LIBRARY_PATH", b.toString());
        List<Path> folders = CudaLibraries.standardFolders(env);
        assertEquals(List.of(a, b), folders.subList(0, 2));
        assertTrue(folders.stream().allMatch(Files::isDirectory), folders.toString());
    }

    @Test
    void pipWheelFoldersOfAVirtualEnvironmentAreSearched(@TempDir Path venv) throws IOException {
        Path lib = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cu13/lib"));
        List<Path> folders = CudaLibraries.standardFolders(Map.of("VIRTUAL_ENV", venv.toString()));
        assertTrue(folders.contains(lib), folders.toString());
    }

    @Test
    void aDriverInAGivenFolderIsFound(@TempDir Path dir) throws IOException {
        Files.createFile(dir.resolve(CudaLibraries.DRIVER));
        assertEquals(dir.resolve(CudaLibraries.DRIVER), new CudaLibraries(List.of(dir)).driver().orElseThrow());
    }
}
