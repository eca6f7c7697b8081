package esdnative.model.clip;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Test-only reader of an all-F32 safetensors file (names → shapes, values), until esdnative.io is on main. */
record ClipSafetensors(Map<String, int[]> shapes, Map<String, float[]> values) {

    static ClipSafetensors read(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen = (int) buf.getLong(0);
        JsonNode header = new ObjectMapper().readTree(new String(buf.array(), 8, headerLen, StandardCharsets.UTF_8));
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        for (var e : header.properties()) {
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            if (!t.get("dtype").asText().equals("F32")) throw new IOException(e.getKey() + ": not F32");
            int[] shape = new int[t.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asInt();
            int begin = t.get("data_offsets").get(0).asInt(), end = t.get("data_offsets").get(1).asInt();
            float[] v = new float[(end - begin) / 4];
            buf.slice(8 + headerLen + begin, end - begin).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
            shapes.put(e.getKey(), shape);
            values.put(e.getKey(), v);
        }
        return new ClipSafetensors(shapes, values);
    }
}
