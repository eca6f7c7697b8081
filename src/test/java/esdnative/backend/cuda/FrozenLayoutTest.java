package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The element runs of a storage with frozen ranges, and where each view's elements lie. */
class FrozenLayoutTest {
    @Test
    void frozenRangesAndTheGapsBetweenThemPackIntoTwoBlocksInOrder() {
        // a buffer of 20: [0,2) float32, [2,8) frozen (two adjacent weights), [8,9) float32, [9,15) frozen, [15,20) float32
        FrozenLayout layout = FrozenLayout.of(20, List.of(new long[] {9, 15}, new long[] {2, 5}, new long[] {5, 8}));
        assertEquals(5, layout.runs());
        assertEquals(2 + 1 + 5, layout.float32Elements());
        assertEquals(12, layout.bf16Elements());
        assertEquals(24, layout.bf16Bytes());
        layout.place(1000, 5000);
        assertEquals(1000, layout.float32Address(0, 2));
        assertEquals(5000, layout.bf16Address(2, 3));      // the first weight
        assertEquals(5006, layout.bf16Address(5, 3));      // the second, right after it
        assertEquals(1008, layout.float32Address(8, 1));   // a bias between them
        assertEquals(5012, layout.bf16Address(9, 6));
        assertEquals(1012 + 4 * 4, layout.float32Address(19, 1));
    }

    @Test
    void aViewThatIsNotWhollyOneKindHasNoAddressOfThatKind() {
        FrozenLayout layout = FrozenLayout.of(10, List.of(new long[] {3, 6}));
        layout.place(100, 200);
        assertEquals(-1, layout.float32Address(3, 1), "a frozen element read as float32");
        assertEquals(-1, layout.bf16Address(0, 1), "a float32 element read as bf16");
        assertEquals(-1, layout.float32Address(0, 5), "a view reaching into the frozen run");
        assertEquals(-1, layout.bf16Address(4, 3), "a view reaching past the frozen run");
        assertEquals(200 + 2 * 2, layout.bf16Address(5, 1));
    }

    @Test
    void overlappingRangesMergeAndRangesOutsideTheStorageAreRefused() {
        FrozenLayout layout = FrozenLayout.of(8, List.of(new long[] {0, 4}, new long[] {2, 8}));
        assertEquals(1, layout.runs());
        assertEquals(0, layout.float32Elements());
        assertThrows(IllegalArgumentException.class, () -> FrozenLayout.of(8, List.<long[]>of(new long[] {6, 9})));
    }
}
