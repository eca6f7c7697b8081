package esdnative.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import esdnative.util.UserError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The project's one JSON setup (config.json, scheduler_config.json, manifests): unknown properties are ignored,
 * duplicate keys and trailing garbage are errors. Problems become one-line UserErrors naming the file.
 */
public final class Json {
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    private Json() {}

    /** The configured mapper (thread-safe once built). */
    public static ObjectMapper mapper() { return MAPPER; }

    /** Reads {@code path} into a record or class, ignoring properties it does not declare. */
    public static <T> T read(Path path, Class<T> type) {
        try {
            return MAPPER.readValue(bytes(path), type);
        } catch (IOException e) {
            throw error(path, e);
        }
    }

    /** Reads {@code path} as a tree. */
    public static JsonNode tree(Path path) {
        try {
            return MAPPER.readTree(bytes(path));
        } catch (IOException e) {
            throw error(path, e);
        }
    }

    private static byte[] bytes(Path path) {
        try {
            return Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new UserError(path + ": no such file");
        } catch (IOException e) {
            throw new UserError(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** One line: the file, where, and what Jackson objected to. */
    static UserError error(Object source, IOException e) {
        if (e instanceof JsonProcessingException jpe) {
            JsonLocation at = jpe.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            return new UserError(source + ": invalid JSON" + where + ": " + jpe.getOriginalMessage().lines().findFirst().orElse(""), e);
        }
        return new UserError(source + ": cannot read JSON: " + e.getMessage(), e);
    }
}
