package esdnative.backend.cuda;

import esdnative.backend.cuda.CudaKernels.Dim;

/**
 * How group_norm.cu's kernels split a group norm over [n, c, hw]: one block per piece of a channel plane, grid
 * (n·c, pieces). A plane is cut into pieces only where the planes alone would leave the GPU underfilled (n·c below
 * about two blocks per SM, e.g. a batch-1 VAE with 128 channels), and only into pieces of at least
 * {@link #MIN_PIECE} pixels. At SD 1.4's shapes (batch 2, 320–2560 channels) that is one piece per plane:
 * 640–5120 blocks, where one block per (sample, group) made 64.
 */
record GroupNormGrid(int planes, int pieces, int pieceLength) {
    /** blocks that fill the GPU: about two per SM of an H100/H200 (132 SMs) */
    static final int TARGET_BLOCKS = 2 * 132;
    /** pixels per piece at least, so that a block has work for its threads */
    static final int MIN_PIECE = 2048;
    /** two doubles per (plane, piece): group_norm.cu's GN_PARTIAL */
    private static final int PARTIAL_DOUBLES = 2;

    static GroupNormGrid of(int n, int c, int hw) {
        int planes = Math.multiplyExact(n, c);
        int wanted = Math.max(1, (TARGET_BLOCKS + planes - 1) / planes);
        int pieces = Math.max(1, Math.min(wanted, hw / MIN_PIECE));
        return new GroupNormGrid(planes, pieces, (hw + pieces - 1) / pieces);
    }

    Dim blocks() { return Dim.of(planes, pieces); }

    /** Threads per block: enough to cover a short piece without idling most of a large block. */
    Dim threads() {
        return Dim.of(pieceLength >= 2048 ? 256 : pieceLength >= 256 ? 128 : 64);
    }

    /** Bytes of the partial sums' workspace. */
    long partialBytes() { return (long) planes * pieces * PARTIAL_DOUBLES * Double.BYTES; }
}
