package esdnative.model.unet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.StreamSupport;

/** Test-only reader of an all-F32 safetensors file: names → shapes and values. */
record TestSafetensors(Map<String, int[]> shapes, Map<String, float[]> values) {

    static TestSafetensors read(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen = (int) buf.getLong(0);
        JsonNode header = new ObjectMapper().readTree(new String(buf.array(), 8, headerLen, java.nio.charset.StandardCharsets.UTF_8));
        Map<String, int[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> values = new LinkedHashMap<>();
        for (var e : header.properties()) {
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            if (!t.get("dtype").asText().equals("F32")) throw new IOException(e.getKey() + ": not F32");
            int[] shape = StreamSupport.stream(t.get("shape").spliterator(), false).mapToInt(JsonNode::asInt).toArray();
            long begin = t.get("data_offsets").get(0).asLong();
            long end = t.get("data_offsets").get(1).asLong();
            float[] v = new float[(int) ((end - begin) / 4)];
            buf.slice(8 + headerLen + (int) begin, (int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
            shapes.put(e.getKey(), shape);
            values.put(e.getKey(), v);
        }
        return new TestSafetensors(shapes, values);
    }
}
