package esdnative.io;

import esdnative.util.UserError;
import esdnative.io.Pickle.Opaque;
import esdnative.io.Pickle.Tuple;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PickleTest {
    // pickle.dumps(OBJ, protocol=N) from CPython 3, where
    // OBJ = {'a': [1, 2.5, -3, 2**70, -2**63, True, False, None, 'é', b'xy', (1, 2), (), (7,), (1, 2, 3), {'k': 'v'}],
    //        'big': 300, 'neg': -1, 'i4': 70000}
    private static final String PROTOCOL_2 = "80027d71002858010000006171015d7102284b014740040000000000004afdffffff8a0900000000"
            + "00000000408a08000000000000008088894e5802000000c3a97103635f636f646563730a656e636f64650a7104580200000078797105"
            + "58060000006c6174696e3171068671075271084b014b02867109294b0785710a4b014b024b0387710b7d710c58010000006b710d5801"
            + "00000076710e73655803000000626967710f4d2c0158030000006e656771104affffffff5802000000693471114a70110100752e";
    private static final String PROTOCOL_4 = "8004957b000000000000007d94288c0161945d94284b014740040000000000004afdffffff8a09"
            + "0000000000000000408a08000000000000008088894e8c02c3a99443027879944b014b028694294b0785944b014b024b0387947d948c"
            + "016b948c01769473658c03626967944d2c018c036e6567944affffffff8c026934944a70110100752e";
    // pickle.dumps(collections.OrderedDict([('x', 1)]), protocol=2)
    private static final String ORDERED_DICT = "800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000007871024b01732e";

    private static Object load(String hex) {
        return Pickle.load("test.pkl", ByteBuffer.wrap(HexFormat.of().parseHex(hex)), pid -> {
            throw new AssertionError("no persistent ids here");
        });
    }

    private static void assertPlainData(Object loaded, Object expectedBytes) {
        Map<?, ?> m = (Map<?, ?>) loaded;
        assertEquals(List.of("a", "big", "neg", "i4"), List.copyOf(m.keySet()));
        List<?> a = (List<?>) m.get("a");
        List<Object> expected = Arrays.asList(1L, 2.5, -3L, BigInteger.TWO.pow(70), Long.MIN_VALUE, true, false, null, "é",
                expectedBytes, new Tuple(List.of(1L, 2L)), new Tuple(List.of()), new Tuple(List.of(7L)),
                new Tuple(List.of(1L, 2L, 3L)), Map.of("k", "v"));
        assertEquals(expected.size(), a.size());
        for (int i = 0; i < a.size(); i++) {
            if (a.get(i) instanceof byte[] b) assertArrayEquals((byte[]) expected.get(i), b);
            else assertEquals(expected.get(i), a.get(i), "item " + i);
        }
        assertEquals(300L, m.get("big"));
        assertEquals(-1L, m.get("neg"));
        assertEquals(70000L, m.get("i4"));
    }

    @Test
    void readsPlainDataOfProtocols2And4() {
        assertPlainData(load(PROTOCOL_4), new byte[] {'x', 'y'});
        // protocol 2 spells bytes as a call to _codecs.encode: kept inert, never called
        assertPlainData(load(PROTOCOL_2), new Opaque("_codecs.encode"));
        assertEquals(Map.of("x", 1L), load(ORDERED_DICT));
    }

    @Test
    void refusesCodeAndBrokenStreams() {
        // protocol 4 STACK_GLOBAL os.system, called with 'id'
        UserError e = assertThrows(UserError.class, () -> load("80048c026f73948c0673797374656d94938c02696494855294" + "2e"));
        assertEquals("test.pkl: refusing pickle global os.system (only tensor and container types are allowed; "
                + "the file may be malicious)", e.getMessage());
        e = assertThrows(UserError.class, () -> load(PROTOCOL_4.substring(0, 120)));
        assertTrue(e.getMessage().contains("ends early"), e.getMessage());
        e = assertThrows(UserError.class, () -> load("80025d7d622e"));   // BUILD on a list
        assertTrue(e.getMessage().contains("sets the state of"), e.getMessage());
        e = assertThrows(UserError.class, () -> load("8002ff2e"));
        assertTrue(e.getMessage().contains("unsupported pickle opcode 0xff at byte 2"), e.getMessage());
        e = assertThrows(UserError.class, () -> load("8002680a2e"));     // BINGET of nothing stored
        assertTrue(e.getMessage().contains("memo entry 10"), e.getMessage());
    }
}
