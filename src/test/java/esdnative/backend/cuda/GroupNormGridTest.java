package esdnative.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How group norm's kernels split their work: enough blocks for the whole GPU, and never pieces too short. */
class GroupNormGridTest {
    @Test
    void sd14ShapesFillTheGpuWithWholePlanes() {
        // SD 1.4 at 512 px, batch 2 (guided sampling) and 1 (the trained pass): one block per channel plane, where
        // one block per (sample, group) made 64 and 32
        for (int n : new int[] {1, 2}) {
            for (int[] cHw : new int[][] {{320, 64 * 64}, {640, 32 * 32}, {1280, 16 * 16}, {2560, 8 * 8}}) {
                GroupNormGrid g = GroupNormGrid.of(n, cHw[0], cHw[1]);
                assertEquals(1, g.pieces());
                assertEquals(n * cHw[0], g.blocks().x());
                assertTrue(g.blocks().x() >= GroupNormGrid.TARGET_BLOCKS, g.toString());
            }
        }
    }

    @Test
    void fewLongPlanesAreCutIntoPieces() {
        // a batch-1 VAE decoder at 512 px: 128 planes of 512×512 pixels
        GroupNormGrid g = GroupNormGrid.of(1, 128, 512 * 512);
        assertEquals(3, g.pieces());
        assertTrue((long) g.planes() * g.pieces() >= GroupNormGrid.TARGET_BLOCKS, g.toString());
        assertEquals(new CudaKernels.Dim(128, 3, 1), g.blocks());
        assertEquals(256, g.threads().x());
    }

    @Test
    void shortPlanesStayWholeWithSmallBlocks() {
        GroupNormGrid g = GroupNormGrid.of(1, 8, GroupNormGrid.MIN_PIECE * 2 - 1);
        assertEquals(1, g.pieces(), "no piece shorter than MIN_PIECE");
        GroupNormGrid tiny = GroupNormGrid.of(2, 12, 63);
        assertEquals(1, tiny.pieces());
        assertEquals(64, tiny.threads().x());
        assertEquals(2L * 12 * 2 * Double.BYTES, tiny.partialBytes());
    }
}
