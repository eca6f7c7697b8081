package esdnative.io;

import esdnative.util.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonTest {
    @TempDir
    Path dir;

    record Config(String name, int channels, List<Integer> sizes) {}

    @Test
    void readsRecordsIgnoringUnknownProperties() throws IOException {
        Path p = dir.resolve("config.json");
        Files.writeString(p, "{\"_class_name\": \"X\", \"name\": \"unet\", \"channels\": 4, \"sizes\": [1, 2]}");
        assertEquals(new Config("unet", 4, List.of(1, 2)), Json.read(p, Config.class));
        assertEquals("X", Json.tree(p).get("_class_name").textValue());
    }

    @Test
    void errorsNameTheFileOnOneLine() throws IOException {
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, "{\n  \"name\": \"unet\",\n  \"channels\": }\n");
        UserError e = assertThrows(UserError.class, () -> Json.read(broken, Config.class));
        assertTrue(e.getMessage().startsWith(broken + ": invalid JSON at line 3"), e.getMessage());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());

        Path wrongType = dir.resolve("wrong.json");
        Files.writeString(wrongType, "{\"channels\": \"four\"}");
        e = assertThrows(UserError.class, () -> Json.read(wrongType, Config.class));
        assertTrue(e.getMessage().startsWith(wrongType + ": invalid JSON"), e.getMessage());

        Path missing = dir.resolve("missing.json");
        e = assertThrows(UserError.class, () -> Json.tree(missing));
        assertEquals(missing + ": no such file", e.getMessage());
    }
}
