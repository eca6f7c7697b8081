package esdnative.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The PTX modules the build packed into the jar ({@code /kernels/NAME.ptx}), and their kernels' parameter types. */
final class Ptx {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)\\s+\\w+");

    private Ptx() {}

    /** The text of module {@code name}, or empty when the jar was built without nvcc. */
    static Optional<String> read(String module) {
        try (InputStream in = Ptx.class.getResourceAsStream("/kernels/" + module + ".ptx")) {
            if (in == null) return Optional.empty();
            return Optional.of(new String(in.readAllBytes(), StandardCharsets.US_ASCII));
        } catch (IOException e) {
            throw new CudaException("cannot read kernel module " + module + ".ptx from the jar: " + e.getMessage(), e);
        }
    }

    /** Every kernel entry of a PTX text with its parameter types in order, e.g. add → [u64, u64, u64, u64]. */
    static Map<String, List<String>> entries(String ptx) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        Matcher entry = ENTRY.matcher(ptx);
        while (entry.find()) {
            List<String> types = new ArrayList<>();
            Matcher param = PARAM.matcher(entry.group(2));
            while (param.find()) types.add(param.group(1));
            out.put(entry.group(1), types);
        }
        return out;
    }

    /** Checks that the module declares {@code kernel} with exactly the parameter types the Java side passes. */
    static void checkSignature(Kernel kernel, Map<String, List<String>> moduleEntries) {
        List<String> actual = moduleEntries.get(kernel.entry);
        if (actual == null) {
            throw new CudaException("kernel " + kernel.entry + " is missing from " + kernel.module + ".ptx");
        }
        if (!actual.equals(kernel.ptxTypes())) {
            throw new CudaException("kernel " + kernel.entry + " in " + kernel.module + ".ptx takes " + actual
                    + " but the backend passes " + kernel.ptxTypes());
        }
    }
}
