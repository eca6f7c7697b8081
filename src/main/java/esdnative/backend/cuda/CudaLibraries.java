package esdnative.backend.cuda;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Finds the NVIDIA libraries the CUDA backend loads: the driver ({@code libcuda.so.1}), cuBLAS
 * ({@code libcublas.so.13}, else {@code .12}, with its {@code libcublasLt} beside it) and, optionally, cuDNN 9.
 *
 * <p>Folders searched, in order: {@code $ESD_CUDA_LIBS} (path-separated), {@code $LD_LIBRARY_PATH},
 * {@code /usr/local/nvidia/lib64}, {@code /usr/local/cuda/lib64}, {@code /usr/local/cuda-*}{@code /lib64},
 * {@code /usr/lib/x86_64-linux-gnu}, {@code /usr/lib64}, and the {@code nvidia/*}{@code /lib} folders of Python
 * installs (pip's CUDA wheels). A library in none of them may still be known to the system loader; the backend
 * then loads it by name.
 */
public final class CudaLibraries {
    public static final String DRIVER = "libcuda.so.1";
    public static final List<String> CUBLAS = List.of("libcublas.so.13", "libcublas.so.12");
    public static final String CUDNN = "libcudnn.so.9";

    private final List<Path> folders;

    /** Searches the given folders, in order. */
    public CudaLibraries(List<Path> folders) {
        this.folders = List.copyOf(folders);
    }

    /** Searches the standard folders of this machine (see the class comment). */
    public static CudaLibraries standard() {
        return new CudaLibraries(standardFolders(System.getenv()));
    }

    public List<Path> folders() { return folders; }

    /** The first folder holding {@code fileName}, as a path to the file. */
    public Optional<Path> find(String fileName) {
        for (Path folder : folders) {
            Path candidate = folder.resolve(fileName);
            if (Files.isRegularFile(candidate)) return Optional.of(candidate);
        }
        return Optional.empty();
    }

    /**
     * Loads the driver library (by its path when found, else by name through the system loader), so that JCuda's
     * native part, which links to libcuda.so.1, finds it even in a folder the loader does not search. Returns its
     * symbols (the kernels' launches call cuLaunchKernel through them).
     */
    @SuppressWarnings("restricted")
    public SymbolLookup loadDriver() {
        String location = find(DRIVER).map(Path::toString).orElse(DRIVER);
        try {
            return SymbolLookup.libraryLookup(location, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new CudaException("no NVIDIA driver: " + DRIVER + " is not in " + describeFolders()
                    + " and the system loader does not know it", e);
        }
    }

    /** Where the driver library is, or empty (it may still be known to the system loader). */
    public Optional<Path> driver() {
        return find(DRIVER);
    }

    /**
     * cuBLAS, newest major version first, with the cuBLASLt of the same version when it sits beside it; a version
     * in none of the folders is tried through the system loader. Throws when none loads.
     */
    @SuppressWarnings("restricted")
    Cublas.Files cublas() {
        for (String name : CUBLAS) {
            Optional<Path> cublas = find(name);
            if (cublas.isPresent()) {
                Path lt = cublas.get().resolveSibling(name.replace("libcublas", "libcublasLt"));
                return new Cublas.Files(cublas.get().toString(), Files.isRegularFile(lt) ? lt.toString() : null);
            }
        }
        for (String name : CUBLAS) {
            try {
                SymbolLookup.libraryLookup(name, Arena.global());
                return new Cublas.Files(name, null);
            } catch (IllegalArgumentException notKnown) {
                // try the next version
            }
        }
        throw new CudaException("cuBLAS not found: " + String.join(" or ", CUBLAS) + " is not in "
                + describeFolders() + " (set ESD_CUDA_LIBS to the folder that holds it)");
    }

    /** The folders, for messages; "no folders" when none exists. */
    String describeFolders() {
        if (folders.isEmpty()) return "any searched folder (none exists)";
        return folders.stream().map(Path::toString).collect(Collectors.joining(", "));
    }

    /** Folders in search order, from the environment and well-known places; only those that exist. */
    static List<Path> standardFolders(Map<String, String> env) {
        Set<Path> out = new LinkedHashSet<>();
        addPathList(out, env.get("ESD_CUDA_LIBS"));
        addPathList(out, env.get("LD_LIBRARY_PATH"));
        out.add(Path.of("/usr/local/nvidia/lib64"));
        out.add(Path.of("/usr/local/cuda/lib64"));
        out.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        for (Path cuda : children(Path.of("/usr/local"), "cuda-")) {
            out.add(cuda.resolve("lib64"));
            out.add(cuda.resolve("targets/x86_64-linux/lib"));
        }
        out.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        out.add(Path.of("/usr/lib64"));
        out.add(Path.of("/lib/x86_64-linux-gnu"));
        for (Path sitePackages : pythonSitePackages(env)) {
            for (Path nvidiaPackage : children(sitePackages.resolve("nvidia"), "")) {
                out.add(nvidiaPackage.resolve("lib"));
            }
        }
        List<Path> existing = new ArrayList<>();
        for (Path p : out) if (Files.isDirectory(p)) existing.add(p);
        return existing;
    }

    private static void addPathList(Set<Path> out, String list) {
        if (list == null || list.isBlank()) return;
        for (String part : list.split(File.pathSeparator)) {
            if (!part.isBlank()) out.add(Path.of(part.trim()));
        }
    }

    /** site-packages / dist-packages folders of system Pythons, /opt virtual environments and the user's. */
    private static List<Path> pythonSitePackages(Map<String, String> env) {
        List<Path> libRoots = new ArrayList<>(List.of(Path.of("/usr/lib"), Path.of("/usr/local/lib"),
                Path.of("/opt/conda/lib")));
        String venv = env.get("VIRTUAL_ENV");
        if (venv != null && !venv.isBlank()) libRoots.add(Path.of(venv, "lib"));
        String home = env.get("HOME");
        if (home != null && !home.isBlank()) libRoots.add(Path.of(home, ".local", "lib"));
        for (Path opt : children(Path.of("/opt"), "")) {
            libRoots.add(opt.resolve("lib"));
            libRoots.add(opt.resolve(".venv/lib"));
            libRoots.add(opt.resolve("venv/lib"));
        }
        List<Path> out = new ArrayList<>();
        for (Path root : libRoots) {
            for (Path python : children(root, "python3")) {
                out.add(python.resolve("site-packages"));
                out.add(python.resolve("dist-packages"));
            }
        }
        return out;
    }

    /** Sub-folders of {@code dir} whose names start with {@code prefix}, sorted by name, newest version first. */
    private static List<Path> children(Path dir, String prefix) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) return out;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                if (p.getFileName().toString().startsWith(prefix) && Files.isDirectory(p)) out.add(p);
            }
        } catch (IOException | SecurityException e) {
            return out; // an unreadable folder holds nothing we can load
        }
        out.sort((a, b) -> b.getFileName().toString().compareTo(a.getFileName().toString()));
        return out;
    }
}
