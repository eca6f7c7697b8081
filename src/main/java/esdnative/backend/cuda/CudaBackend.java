package esdnative.backend.cuda;

import esdnative.backend.Backend;
import esdnative.backend.RepeatedStep;
import esdnative.backend.Scope;
import esdnative.backend.ScopeStack;
import esdnative.backend.cuda.CudaKernels.Dim;
import esdnative.backend.cuda.CudaKernels.Ptr;
import esdnative.tensor.Conv2dShape;
import esdnative.tensor.Tensor;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The backend on one NVIDIA GPU. Elementwise, normalisation, softmax, layout, loss and optimiser ops are own
 * kernels ({@code kernels/*.cu}, compiled to PTX by the build); matrix products are cuBLAS GEMMs; convolution is
 * im2col + cuBLAS GEMM (not cuDNN); attention is fused (flash attention: no probability matrix; each row's
 * log-sum-exp kept for backward, which recomputes the probabilities).
 *
 * <p>All work goes to one stream, in order; tensors live in device memory from a caching allocator. Every driver
 * call, launch and cuBLAS call is checked and a failure names the operation; {@code ESD_CUDA_SYNC=1} also waits
 * after every launch so that a faulting kernel is named. Which GEMMs use TF32 tensor cores is the {@link MathMode}'s
 * ({@code ESD_CUDA_MATH}). Not thread-safe: use a backend from one thread at a time.
 */
public final class CudaBackend implements Backend {
    /**
     * How GEMM-based ops multiply. TF32 keeps 10 of float32's 23 mantissa bits of each product's inputs (about
     * 5e-4 relative per product; float32 accumulation), for several times the throughput on tensor cores.
     */
    public enum MathMode {
        /**
         * PyTorch's defaults: TF32 for convolutions ({@code torch.backends.cudnn.allow_tf32 = True}), strict
         * float32 for matrix products and attention ({@code torch.backends.cuda.matmul.allow_tf32 = False}).
         */
        DEFAULT,
        /** TF32 for every GEMM: convolutions, matrix products and attention */
        TF32,
        /** strict float32 everywhere */
        FP32,
        /**
         * bfloat16 GEMM operands (8 significant bits: 2^-9 relative rounding) with float32 products, sums and
         * outputs, for convolutions and matrix products (autocast's bf16): weights frozen by
         * {@link #freezeWeights} are stored as bfloat16, any other operand is rounded per GEMM. Attention, norms,
         * elementwise ops and the optimiser stay float32.
         */
        BF16;

        /** How this mode multiplies, for descriptions. */
        public String describe() {
            return switch (this) {
                case DEFAULT -> "TF32 convolutions, strict float32 matmul and attention (PyTorch's defaults)";
                case TF32 -> "TF32 GEMMs";
                case FP32 -> "strict float32 GEMMs";
                case BF16 -> "bf16 GEMM operands, float32 accumulation";
            };
        }

        /** ESD_CUDA_MATH's value: unset or "default", "tf32", "fp32", "bf16". */
        public static MathMode fromEnvironment(String value) {
            if (value == null || value.isBlank()) return DEFAULT;
            return switch (value.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "default" -> DEFAULT;
                case "tf32" -> TF32;
                case "fp32" -> FP32;
                case "bf16" -> BF16;
                default -> throw new CudaException("ESD_CUDA_MATH must be default, tf32, fp32 or bf16, got '" + value + "'");
            };
        }
    }

    /** The operations whose GEMMs are convolutions (TF32 in the DEFAULT mode). */
    private static final Set<String> CONVOLUTIONS = Set.of("conv2d", "conv2dResidual", "conv2dSampleBias",
            "conv2dBackwardData", "conv2dBackwardWeight");
    private static final int BLOCK = 256;                  // threads of 1-D kernels
    private static final int MAX_GRID = 65535 * 16;        // elementwise grids stride beyond this
    private static final int ROWS_PER_BLOCK = BLOCK / 32;  // warp-per-row kernels
    private static final int MSE_BLOCKS = 256;             // fixed: the loss's summation order must not vary
    private static final int MAX_GRID_Z = 65535;
    private static final int TIMESTEPS_PER_LAUNCH = 4;     // timestep_embedding's t0..t3
    private static final int REDUCTION_BLOCKS = 2 * 132;   // column reductions split rows to about this many blocks
    private static final int REDUCTION_MIN_SLICE = 64;     // rows per slice at least (4 per thread row of a block)
    private static final int FLASH_THREADS = 4 * 32;       // flash_attention.cu's FA_WARPS warps
    private static final int FLASH_ROWS = 4 * 8;           // its FA_BLOCK_ROWS: rows one block owns
    private static final int FLASH_MAX_HEAD_DIM = 160;     // its FA_MAX_D
    private static final long IM2COL_MAX_ELEMENTS = 1L << 28; // 1 GiB of columns at a time
    private static final Cleaner CLEANER = Cleaner.create();

    private final Device device;
    private final CudaAllocator allocator;
    /** blocks of tensors made inside a scope go back to the allocator when it closes, not when the GC notices */
    private final ScopeStack<CudaStorage> scopes = new ScopeStack<>(CudaBackend::storageOf, CudaStorage::release);
    private final MathMode math;
    /** BF16: the current operation's GEMM operands rounded to bfloat16; null in the float32 modes */
    private final Bf16Operands bf16;
    private final String description;
    private String op = "init";
    private boolean closed;
    /** device-memory bytes the attention ops' kernels and GEMMs read and write (each operand once per pass) */
    private long attentionBytes;
    /** storages whose pending zeros this op's outputs dropped (an input of the same op must still read zeros) */
    private final List<CudaStorage> overwrittenByThisOp = new ArrayList<>(4);
    /** repeated steps recorded as CUDA graphs ({@code ESD_CUDA_GRAPHS=0}: run eagerly) */
    private final CudaGraphs graphs;

    /**
     * Opens device 0 ({@code ESD_CUDA_DEVICE} picks another). Throws {@link CudaException} when there is no usable
     * GPU; {@link #probe()} tells beforehand without throwing.
     */
    public CudaBackend(MathMode math) {
        this(math, CudaLibraries.standard());
    }

    /** The backend on the NVIDIA libraries {@code libraries} finds (e.g. the fake ones of a check-only run). */
    public CudaBackend(MathMode math, CudaLibraries libraries) {
        this(new JCudaDevice(libraries), math);
    }

    /** The backend on a given device (tests run it on an emulated one). */
    CudaBackend(Device device, MathMode math) {
        this.device = device;
        this.math = math;
        this.allocator = new CudaAllocator(device);
        this.bf16 = math == MathMode.BF16 ? new Bf16Operands(allocator, this::castToBf16) : null;
        this.description = device.describe() + "; " + math.describe();
        this.graphs = new CudaGraphs(this, device, allocator,
                device.capturesGraphs() && !"0".equals(System.getenv("ESD_CUDA_GRAPHS")), () -> attentionBytes);
    }

    /** The backend in the math mode of {@code ESD_CUDA_MATH} (default, tf32 or fp32; see {@link MathMode}). */
    public static CudaBackend create() {
        return new CudaBackend(MathMode.fromEnvironment(System.getenv("ESD_CUDA_MATH")));
    }

    /** Whether a GPU backend can be created here, with the device or the reason why not; never throws or hangs. */
    public static CudaProbe.Result probe() {
        return CudaProbe.run();
    }

    /** E.g. "NVIDIA H200, compute 9.0, 132 SMs, 139.8 GiB, driver CUDA 13.0; cuBLAS 13.1.0 (...), TF32 GEMMs; ...". */
    public String describe() { return description; }

    public MathMode mathMode() { return math; }

    /** Allocator counters, e.g. "in use 1.2 MiB (peak 3.4 MiB), cached 0.5 MiB, 17 cuMemAlloc calls". */
    public String memoryReport() {
        allocator.collect();
        return allocator.describe() + graphs.describe();
    }

    /**
     * Bytes of device memory that attention forward and backward have read and written so far, counted per kernel
     * or GEMM pass as each operand read or written once: re-reads of tiles (a GEMM's, or the flash kernels' of one
     * head's keys and values, 1.3 MB at SD 1.4's 64×64, inside the L2 cache) are not counted.
     */
    public long attentionBytes() { return attentionBytes + graphs.replayedAttentionBytes(); }

    /**
     * What the device memory was used for at its peaks (held: in use + cached, what cuMemAlloc handed out; and in
     * use), by the names of {@link #labelAllocations} and {@link #labelMemory}.
     */
    public String memoryPeaks() { return allocator.describePeaks(); }

    /** {@link #memoryPeaks}'s breakdown of the memory held at its peak. */
    MemoryLedger.Snapshot memoryAtPeak() { return allocator.atHeldPeak(); }

    /** Names what a tensor's memory is for from now on (e.g. weights made before {@link #labelAllocations}). */
    public void labelMemory(Tensor t, String label) { allocator.relabel(storageOf(t).block(), label); }

    @Override
    public void labelAllocations(String label) { allocator.label(label); }

    /** Number of cuMemAlloc calls so far (steady-state training steps should add none). */
    public long deviceAllocations() { return allocator.deviceAllocations(); }

    /** Waits until all queued work is done (e.g. before stopping a timer); reports earlier kernel failures. */
    public void synchronize() {
        begin("synchronize");
        device.synchronize();
    }

    @Override
    public String name() { return "cuda"; }

    // ---- memory -------------------------------------------------------------------------------------------

    @Override
    public Tensor zeros(int... shape) {
        begin("zeros");
        Tensor t = allocate(shape);
        if (scopes.inScope()) scopes.own(storageOf(t));
        storageOf(t).zeroPending(t.size() > 0); // memset later, and only if not overwritten first: see out()
        return t;
    }

    @Override
    public Scope openScope() { return scopes.open(); }

    /** Takes a tensor out of the open scopes: it lives until unreachable (e.g. a recorded graph's output). */
    void disown(Tensor t) { scopes.disown(t); }

    /** Recorded as a CUDA graph from its second call on, replayed after: see {@link CudaGraphs}. */
    @Override
    public Tensor repeatedStep(Object key, Tensor[] inputs, RepeatedStep step) {
        begin("repeatedStep");
        return graphs.run(key, inputs, step);
    }

    @Override
    public void release(Tensor t) {
        begin("release");
        storageOf(t).release();
    }

    @Override
    public Tensor fromHost(float[] data, int... shape) {
        begin("fromHost");
        if (Tensor.sizeOf(shape) != data.length) {
            throw new IllegalArgumentException(data.length + " values for shape " + Arrays.toString(shape));
        }
        Tensor t = allocate(shape);
        upload(t, data, 0);
        return t;
    }

    @Override
    public float[] toHost(Tensor t) {
        begin("toHost");
        float[] out = new float[Math.toIntExact(t.size())];
        if (out.length > 0) device.download(out, ptr(t, out.length, "t").address(), out.length);
        return out;
    }

    @Override
    public void copyFromHost(Tensor dst, float[] src, int srcOffset) {
        begin("copyFromHost");
        if (srcOffset < 0 || src.length - (long) srcOffset < dst.size()) {
            throw new IllegalArgumentException("copyFromHost: " + dst + " needs " + dst.size() + " values from offset "
                    + srcOffset + ", the array has " + src.length);
        }
        upload(dst, src, srcOffset);
    }

    @Override
    public void fill(Tensor t, float value) {
        begin("fill");
        if (t.size() > 0) device.fill32(out(t, t.size(), "t").address(), Float.floatToRawIntBits(value), t.size());
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        begin("copy");
        if (dst.size() != src.size()) {
            throw new IllegalArgumentException("copy of " + src + " into " + dst + ": sizes differ");
        }
        if (src.size() > 0) {
            long frozen = frozenBf16Address(src, src.size());
            if (frozen >= 0) { // a frozen weight reads back as its bfloat16 values
                elementwise(Kernel.CAST_FROM_BF16, src.size(), out(dst, src.size(), "dst"), new Ptr(frozen), src.size());
                return;
            }
            device.copy(out(dst, src.size(), "dst").address(), ptr(src, src.size(), "src").address(),
                    src.size() * Float.BYTES);
        }
    }

    /**
     * In bf16 precision, moves each buffer holding some of {@code weights} to a {@link FrozenLayout}: the weights
     * rounded into one bfloat16 block, the buffer's other elements copied into one float32 block; the float32 buffer
     * then goes back to the driver. In the other modes nothing changes.
     */
    @Override
    public void freezeWeights(List<Tensor> weights) {
        begin("freezeWeights");
        if (math != MathMode.BF16) return;
        Map<CudaStorage, List<long[]>> ranges = new LinkedHashMap<>(); // storages compare by identity
        for (Tensor t : weights) {
            CudaStorage s = storageOf(t);
            if (s.frozen() == null) ranges.computeIfAbsent(s, k -> new ArrayList<>()).add(new long[] {t.offset(), t.offset() + t.size()});
        }
        for (var e : ranges.entrySet()) {
            CudaStorage s = e.getKey();
            long source = ptr(new Tensor(s, 0, 0), 0, "weights").address(); // settles a pending zeros() memset
            FrozenLayout layout = FrozenLayout.of(s.capacity(), e.getValue());
            CudaAllocator.Block float32 = allocator.allocateTensor(layout.float32Elements() * Float.BYTES, op);
            CudaAllocator.Block rounded = allocator.allocateTensor(layout.bf16Bytes(), op);
            layout.place(float32.address(), rounded.address());
            for (int run = 0; run < layout.runs(); run++) {
                long from = source + layout.start(run) * Float.BYTES, n = layout.length(run);
                if (layout.frozen(run)) castToBf16(layout.bf16Address(layout.start(run), n), from, n);
                else device.copy(layout.float32Address(layout.start(run), n), from, n * Float.BYTES);
            }
            s.freeze(layout);
            CudaAllocator blocks = allocator; // the cleaner's action must not reach the storage
            CLEANER.register(s, () -> {
                blocks.releaseLater(float32);
                blocks.releaseLater(rounded);
            });
        }
        if (!ranges.isEmpty()) allocator.freeUnused(); // the float32 buffers' memory goes back to the driver
    }

    // ---- linear algebra ------------------------------------------------------------------------------------

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                     Tensor a, int lda, long strideA, Tensor b, int ldb, long strideB,
                     float beta, Tensor c, int ldc, long strideC, int batch) {
        begin("gemm");
        if (m == 0 || n == 0 || batch == 0) return;
        long aNeed = matrixElements(transA ? k : m, transA ? m : k, lda, strideA, batch);
        long bNeed = matrixElements(transB ? n : k, transB ? k : n, ldb, strideB, batch);
        long cNeed = matrixElements(m, n, ldc, strideC, batch);
        boolean dense = ldc == n && (batch == 1 || strideC == (long) m * n); // C's elements are all written
        if (dense && beta != 0 && pendingZeroCoveredBy(c, cNeed)) beta = 0; // C += A·B into zeros: C = A·B
        Ptr cp = beta == 0 && dense ? out(c, cNeed, "C") : ptr(c, cNeed, "C");
        gemmAt(transA, transB, m, n, k, alpha, gemmOperand(a, aNeed, "A"), lda, strideA,
                gemmOperand(b, bNeed, "B"), ldb, strideB, beta, cp.address(), ldc, strideC, batch);
    }

    @Override
    public void addRowBias(Tensor y, Tensor bias, int rows, int cols) {
        begin("addRowBias");
        long n = (long) rows * cols;
        elementwise(Kernel.ADD_ROW_BIAS, n, ptr(y, n, "y"), ptr(bias, cols, "bias"), rows, cols);
    }

    @Override
    public void addRowBiasResidual(Tensor y, Tensor bias, Tensor residual, int rows, int cols) {
        begin("addRowBiasResidual");
        long n = (long) rows * cols;
        elementwise(Kernel.ADD_ROW_BIAS_RESIDUAL, n, ptr(y, n, "y"), ptr(bias, cols, "bias"),
                ptr(residual, n, "residual"), rows, cols);
    }

    @Override
    public void sumRows(Tensor dBias, Tensor dy, int rows, int cols) {
        begin("sumRows");
        Ptr db = ptr(dBias, cols, "dBias"), g = ptr(dy, (long) rows * cols, "dy");
        if (cols == 0) return;
        // rows split into slices so that the blocks fill the GPU (cols / 32 blocks alone: 10 for 320 channels),
        // each slice at least REDUCTION_MIN_SLICE rows; then the slices' sums added in order
        int columnBlocks = ceilDiv(cols, 32);
        int slices = rowSlices(rows, columnBlocks);
        CudaAllocator.Block partial = allocator.allocateWorkspace((long) slices * cols * Double.BYTES, op);
        try {
            launch(Kernel.SUM_ROWS, Dim.of(columnBlocks, slices), Dim.of(32, 16), new Ptr(partial.address()), g,
                    rows, cols);
            elementwise(Kernel.SUM_ROWS_FINISH, cols, db, new Ptr(partial.address()), slices, cols);
        } finally {
            allocator.release(partial);
        }
    }

    @Override
    public void transpose(Tensor out, Tensor in, int batch, int rows, int cols) {
        begin("transpose");
        long matrix = (long) rows * cols;
        Ptr o = out(out, batch * matrix, "out"), x = ptr(in, batch * matrix, "in");
        if (matrix == 0) return;
        for (int first = 0; first < batch; first += MAX_GRID_Z) {
            int count = Math.min(MAX_GRID_Z, batch - first);
            long skip = first * matrix * Float.BYTES;
            launch(Kernel.TRANSPOSE, new Dim(ceilDiv(cols, 32), ceilDiv(rows, 32), count), Dim.of(32, 8),
                    new Ptr(o.address() + skip), new Ptr(x.address() + skip), rows, cols);
        }
    }

    // ---- convolution: im2col + cuBLAS ----------------------------------------------------------------------

    @Override
    public void conv2d(Tensor out, Tensor in, Tensor weight, Tensor bias, Conv2dShape sh) {
        begin("conv2d");
        convolve(out, in, weight, bias, null, null, sh);
    }

    /** The bias and the residual are added in one pass over the GEMM's output. */
    @Override
    public void conv2dResidual(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor residual, Conv2dShape sh) {
        begin("conv2dResidual");
        convolve(out, in, weight, bias, residual, null, sh);
    }

    /** Both biases are added in one pass over the GEMM's output. */
    @Override
    public void conv2dSampleBias(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor sampleBias,
                                 Conv2dShape sh) {
        begin("conv2dSampleBias");
        convolve(out, in, weight, bias, null, sampleBias, sh);
    }

    /**
     * out = conv(in) + bias (+ residual, or + sampleBias[n, k]): GEMMs, then one pass adding what is not null (at
     * most one of residual and sampleBias).
     */
    private void convolve(Tensor out, Tensor in, Tensor weight, Tensor bias, Tensor residual, Tensor sampleBias,
                          Conv2dShape sh) {
        ConvSizes z = new ConvSizes(sh);
        Ptr o = out(out, z.outAll, "out"), x = ptr(in, z.inAll, "in");
        long w = gemmOperand(weight, z.weight, "weight");
        Ptr bi = optional(bias, sh.k(), "bias"), r = optional(residual, z.outAll, "residual");
        Ptr sb = optional(sampleBias, (long) sh.n() * sh.k(), "sampleBias");
        if (z.pointwise) {
            // out[n] [k, hw] = w [k, c] · in[n] [c, hw], all samples in one batched GEMM
            gemmAt(false, false, sh.k(), z.ohw, sh.c(), 1f, w, sh.c(), 0, gemmInput(x, z.inAll), z.ohw, z.inSample,
                    0f, o.address(), z.ohw, z.outSample, sh.n());
        } else {
            int chunk = z.samplesPerChunk();
            CudaAllocator.Block col = allocator.allocateWorkspace(chunk * z.colSample * gemmInputBytes(), op);
            try {
                for (int first = 0; first < sh.n(); first += chunk) {
                    int count = Math.min(chunk, sh.n() - first);
                    im2col(col.address(), x.address() + first * z.inSample * Float.BYTES, count, sh);
                    // out[n] [k, ohw] = w [k, crs] · col[n] [crs, ohw]
                    gemmAt(false, false, sh.k(), z.ohw, z.crs, 1f, w, z.crs, 0,
                            col.address(), z.ohw, z.colSample, 0f,
                            o.address() + first * z.outSample * Float.BYTES, z.ohw, z.outSample, count);
                }
            } finally {
                allocator.release(col);
            }
        }
        if (r != null) {
            elementwise(Kernel.ADD_CHANNEL_BIAS_RESIDUAL, z.outAll, o, bi, r, sh.n(), sh.k(), z.ohw);
        } else if (sb != null) {
            elementwise(Kernel.ADD_CHANNEL_BIASES, z.outAll, o, bi, sb, sh.n(), sh.k(), z.ohw);
        } else if (bi != null) {
            elementwise(Kernel.ADD_CHANNEL_BIAS, z.outAll, o, bi, sh.n(), sh.k(), z.ohw, 0);
        }
    }

    @Override
    public void conv2dBackwardData(Tensor dIn, Tensor dOut, Tensor weight, Conv2dShape sh) {
        begin("conv2dBackwardData");
        ConvSizes z = new ConvSizes(sh);
        Ptr dx = ptr(dIn, z.inAll, "dIn");
        long dy = gemmInput(ptr(dOut, z.outAll, "dOut"), z.outAll), w = gemmOperand(weight, z.weight, "weight");
        if (z.pointwise) {
            // dIn[n] [c, hw] += wᵀ [c, k] · dOut[n] [k, hw]
            gemmAt(true, false, sh.c(), z.ohw, sh.k(), 1f, w, sh.c(), 0, dy, z.ohw, z.outSample,
                    1f, dx.address(), z.ohw, z.inSample, sh.n());
            return;
        }
        int chunk = z.samplesPerChunk();
        CudaAllocator.Block col = allocator.allocateWorkspace(chunk * z.colSample * Float.BYTES, op);
        try {
            for (int first = 0; first < sh.n(); first += chunk) {
                int count = Math.min(chunk, sh.n() - first);
                // dcol[n] [crs, ohw] = wᵀ [crs, k] · dOut[n] [k, ohw], then folded back onto the pixels
                gemmAt(true, false, z.crs, z.ohw, sh.k(), 1f, w, z.crs, 0,
                        dy + first * z.outSample * gemmInputBytes(), z.ohw, z.outSample,
                        0f, col.address(), z.ohw, z.colSample, count);
                elementwise(Kernel.COL2IM, (long) count * z.inSample,
                        new Ptr(dx.address() + first * z.inSample * Float.BYTES), new Ptr(col.address()),
                        count, sh.c(), sh.h(), sh.w(), sh.r(), sh.s(), sh.stride(), sh.pad(), sh.outH(), sh.outW());
            }
        } finally {
            allocator.release(col);
        }
    }

    @Override
    public void conv2dBackwardWeight(Tensor dWeight, Tensor dBias, Tensor dOut, Tensor in, Conv2dShape sh) {
        begin("conv2dBackwardWeight");
        ConvSizes z = new ConvSizes(sh);
        Ptr dw = optional(dWeight, z.weight, "dWeight"), db = optional(dBias, sh.k(), "dBias");
        Ptr dy = ptr(dOut, z.outAll, "dOut"), x = ptr(in, z.inAll, "in");
        if (dw != null) {
            long grad = gemmInput(dy, z.outAll);
            int bytes = gemmInputBytes();
            if (z.pointwise) {
                long input = gemmInput(x, z.inAll);
                // dW [k, c] += dOut[n] [k, hw] · in[n]ᵀ [hw, c], one sample after another
                for (int ni = 0; ni < sh.n(); ni++) {
                    gemmAt(false, true, sh.k(), sh.c(), z.ohw, 1f, grad + ni * z.outSample * bytes,
                            z.ohw, 0, input + ni * z.inSample * bytes, z.ohw, 0,
                            1f, dw.address(), sh.c(), 0, 1);
                }
            } else {
                int chunk = z.samplesPerChunk();
                CudaAllocator.Block col = allocator.allocateWorkspace(chunk * z.colSample * bytes, op);
                try {
                    for (int first = 0; first < sh.n(); first += chunk) {
                        int count = Math.min(chunk, sh.n() - first);
                        im2col(col.address(), x.address() + first * z.inSample * Float.BYTES, count, sh);
                        // dW [k, crs] += dOut[n] [k, ohw] · col[n]ᵀ [ohw, crs]
                        for (int i = 0; i < count; i++) {
                            gemmAt(false, true, sh.k(), z.crs, z.ohw, 1f,
                                    grad + (first + i) * z.outSample * bytes, z.ohw, 0,
                                    col.address() + i * z.colSample * bytes, z.ohw, 0,
                                    1f, dw.address(), z.crs, 0, 1);
                        }
                    }
                } finally {
                    allocator.release(col);
                }
            }
        }
        if (db != null) {
            launch(Kernel.CHANNEL_BIAS_GRAD, Dim.of(sh.k()), Dim.of(BLOCK), db, dy, sh.n(), sh.k(), z.ohw, 0);
        }
    }

    /** Element counts of one convolution; pointwise = 1×1, stride 1, no padding (the input is its own im2col). */
    private static final class ConvSizes {
        final int ohw;
        final int crs;
        final long inSample;
        final long outSample;
        final long colSample;
        final long inAll;
        final long outAll;
        final long weight;
        final boolean pointwise;
        final int samples;

        ConvSizes(Conv2dShape sh) {
            samples = sh.n();
            ohw = sh.outH() * sh.outW();
            crs = sh.c() * sh.r() * sh.s();
            inSample = (long) sh.c() * sh.h() * sh.w();
            outSample = (long) sh.k() * ohw;
            colSample = (long) crs * ohw;
            inAll = sh.n() * inSample;
            outAll = sh.n() * outSample;
            weight = (long) sh.k() * crs;
            pointwise = sh.r() == 1 && sh.s() == 1 && sh.stride() == 1 && sh.pad() == 0;
        }

        /**
         * Samples whose columns fit one workspace of at most IM2COL_MAX_ELEMENTS (at least one, at most the batch:
         * the workspace is sized from it).
         */
        int samplesPerChunk() {
            return (int) Math.max(1, Math.min(samples, IM2COL_MAX_ELEMENTS / Math.max(1, colSample)));
        }
    }

    /** The columns of {@code samples} samples, as the GEMMs read them: float32, or bfloat16 in BF16. */
    private void im2col(long col, long in, int samples, Conv2dShape sh) {
        long total = (long) samples * sh.c() * sh.r() * sh.s() * sh.outH() * sh.outW();
        elementwise(bf16 != null ? Kernel.IM2COL_BF16 : Kernel.IM2COL, total, new Ptr(col), new Ptr(in), samples, sh.c(), sh.h(), sh.w(),
                sh.r(), sh.s(), sh.stride(), sh.pad(), sh.outH(), sh.outW());
    }

    // ---- normalisation -------------------------------------------------------------------------------------

    @Override
    public void groupNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int n, int c, int hw, int groups, float eps) {
        begin("groupNorm");
        groupNormForward(out, mean, rstd, in, gamma, beta, n, c, hw, groups, eps, false);
    }

    /** One pass less than groupNorm then silu: the normalised values are never stored. */
    @Override
    public void groupNormSilu(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                              int n, int c, int hw, int groups, float eps) {
        begin("groupNormSilu");
        groupNormForward(out, mean, rstd, in, gamma, beta, n, c, hw, groups, eps, true);
    }

    @Override
    public void groupNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int n, int c, int hw, int groups) {
        begin("groupNormBackward");
        groupNormBackwardPasses(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma, null, n, c, hw, groups);
    }

    /** The silu's gradient is taken inside the group norm's passes, y recomputed from in and the statistics. */
    @Override
    public void groupNormSiluBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in, Tensor mean,
                                      Tensor rstd, Tensor gamma, Tensor beta, int n, int c, int hw, int groups,
                                      float eps) {
        begin("groupNormSiluBackward");
        groupNormBackwardPasses(dIn, dGamma, dBeta, dOut, in, mean, rstd, gamma, beta, n, c, hw, groups);
    }

    /** Statistics per (plane, piece), then every element from its group's combined statistics (group_norm.cu). */
    private void groupNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                                  int n, int c, int hw, int groups, float eps, boolean silu) {
        checkGroups(c, groups);
        long size = (long) n * c * hw;
        int stats = n * groups;
        Ptr x = ptr(in, size, "in"), g = ptr(gamma, c, "gamma"), b = ptr(beta, c, "beta");
        Ptr o = out(out, size, "out"), mu = optionalOut(mean, stats, "mean"), rs = optionalOut(rstd, stats, "rstd");
        if (size == 0) return;
        GroupNormGrid grid = GroupNormGrid.of(n, c, hw);
        CudaAllocator.Block partial = allocator.allocateWorkspace(grid.partialBytes(), op);
        try {
            Ptr sums = new Ptr(partial.address());
            launch(Kernel.GROUP_NORM_STATS, grid.blocks(), grid.threads(), sums, x, hw);
            launch(Kernel.GROUP_NORM_APPLY, grid.blocks(), grid.threads(), o, mu, rs, sums, x, g, b, c, hw, groups,
                    eps, silu ? 1 : 0);
        } finally {
            allocator.release(partial);
        }
    }

    /** Sums per (plane, piece), then the input gradient and the parameter gradients from them; beta: silu only. */
    private void groupNormBackwardPasses(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                         Tensor mean, Tensor rstd, Tensor gamma, Tensor beta,
                                         int n, int c, int hw, int groups) {
        checkGroups(c, groups);
        long size = (long) n * c * hw;
        int stats = n * groups;
        boolean silu = beta != null;
        Ptr dy = ptr(dOut, size, "dOut"), x = ptr(in, size, "in");
        Ptr mu = ptr(mean, stats, "mean"), rs = ptr(rstd, stats, "rstd");
        Ptr g = ptr(gamma, c, "gamma"), b = optional(beta, c, "beta");
        Ptr dx = optional(dIn, size, "dIn"), dg = optional(dGamma, c, "dGamma"), db = optional(dBeta, c, "dBeta");
        if (size == 0 || dx == null && dg == null && db == null) return;
        GroupNormGrid grid = GroupNormGrid.of(n, c, hw);
        CudaAllocator.Block partial = allocator.allocateWorkspace(grid.partialBytes(), op);
        try {
            Ptr sums = new Ptr(partial.address());
            launch(Kernel.GROUP_NORM_BACKWARD_SUMS, grid.blocks(), grid.threads(), sums, dy, x, mu, rs, g, b,
                    c, hw, groups, silu ? 1 : 0);
            if (dx != null) {
                launch(Kernel.GROUP_NORM_BACKWARD_INPUT, grid.blocks(), grid.threads(), dx, sums, dy, x, mu, rs, g, b,
                        c, hw, groups, silu ? 1 : 0);
            }
            if (dg != null || db != null) {
                elementwise(Kernel.GROUP_NORM_BACKWARD_PARAMS, c, dg, db, sums, n, c, grid.pieces());
            }
        } finally {
            allocator.release(partial);
        }
    }

    @Override
    public void layerNorm(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor gamma, Tensor beta,
                          int rows, int cols, float eps) {
        begin("layerNorm");
        long size = (long) rows * cols;
        if (rows == 0) return;
        launch(Kernel.LAYER_NORM_FORWARD, Dim.of(ceilDiv(rows, ROWS_PER_BLOCK)), Dim.of(BLOCK),
                out(out, size, "out"), optionalOut(mean, rows, "mean"), optionalOut(rstd, rows, "rstd"),
                ptr(in, size, "in"), ptr(gamma, cols, "gamma"), ptr(beta, cols, "beta"), rows, cols, eps);
    }

    @Override
    public void layerNormBackward(Tensor dIn, Tensor dGamma, Tensor dBeta, Tensor dOut, Tensor in,
                                  Tensor mean, Tensor rstd, Tensor gamma, int rows, int cols) {
        begin("layerNormBackward");
        long size = (long) rows * cols;
        if (rows == 0 || cols == 0) return;
        Ptr dy = ptr(dOut, size, "dOut"), x = ptr(in, size, "in");
        Ptr mu = ptr(mean, rows, "mean"), rs = ptr(rstd, rows, "rstd");
        if (dIn != null) {
            launch(Kernel.LAYER_NORM_BACKWARD_INPUT, Dim.of(ceilDiv(rows, ROWS_PER_BLOCK)), Dim.of(BLOCK),
                    ptr(dIn, size, "dIn"), dy, x, mu, rs, ptr(gamma, cols, "gamma"), rows, cols);
        }
        if (dGamma != null || dBeta != null) {
            Ptr dg = optional(dGamma, cols, "dGamma"), db = optional(dBeta, cols, "dBeta");
            // as sumRows: rows split into slices that fill the GPU, the slices' sums then added in order
            int columnBlocks = ceilDiv(cols, 32);
            int slices = rowSlices(rows, columnBlocks);
            long partialBytes = (long) slices * cols * Double.BYTES;
            CudaAllocator.Block partial = allocator.allocateWorkspace(2 * partialBytes, op);
            try {
                Ptr gammaSums = dg != null ? new Ptr(partial.address()) : null;
                Ptr betaSums = db != null ? new Ptr(partial.address() + partialBytes) : null;
                launch(Kernel.LAYER_NORM_BACKWARD_PARAMS, Dim.of(columnBlocks, slices), Dim.of(32, 16),
                        gammaSums, betaSums, dy, x, mu, rs, rows, cols);
                if (dg != null) elementwise(Kernel.SUM_ROWS_FINISH, cols, dg, gammaSums, slices, cols);
                if (db != null) elementwise(Kernel.SUM_ROWS_FINISH, cols, db, betaSums, slices, cols);
            } finally {
                allocator.release(partial);
            }
        }
    }

    @Override
    public void softmax(Tensor out, Tensor in, int rows, int cols) {
        begin("softmax");
        long size = (long) rows * cols;
        softmaxRows(out(out, size, "out"), ptr(in, size, "in"), rows, cols, false, 1);
    }

    @Override
    public void softmaxBackward(Tensor dIn, Tensor dOut, Tensor out, int rows, int cols) {
        begin("softmaxBackward");
        long size = (long) rows * cols;
        softmaxBackwardRows(ptr(dIn, size, "dIn"), ptr(dOut, size, "dOut"), ptr(out, size, "out"), rows, cols, true);
    }

    private void softmaxRows(Ptr out, Ptr in, int rows, int cols, boolean causal, int queries) {
        if (rows == 0) return;
        launch(Kernel.SOFTMAX_FORWARD, Dim.of(ceilDiv(rows, ROWS_PER_BLOCK)), Dim.of(BLOCK),
                out, in, rows, cols, causal ? 1 : 0, queries);
    }

    private void softmaxBackwardRows(Ptr dIn, Ptr dOut, Ptr out, int rows, int cols, boolean accumulate) {
        if (rows == 0) return;
        launch(Kernel.SOFTMAX_BACKWARD, Dim.of(ceilDiv(rows, ROWS_PER_BLOCK)), Dim.of(BLOCK),
                dIn, dOut, out, rows, cols, accumulate ? 1 : 0);
    }

    // ---- attention: flash attention kernels (kernels/flash_attention.cu) -----------------------------------

    /** What attention saves for backward: each query row's log-sum-exp [b, heads, lq] (backward recomputes p). */
    @Override
    public int[] attentionSavedShape(int b, int heads, int lq, int lk) {
        return new int[] {b, heads, lq};
    }

    @Override
    public void attention(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v,
                          int b, int heads, int lq, int lk, int d, float scale, boolean causal) {
        begin("attention");
        checkHeadDim(d);
        int ld = heads * d;
        long qSize = (long) b * lq * ld, kSize = (long) b * lk * ld, rows = (long) b * heads * lq;
        if (causal && probs != null) {
            throw new IllegalArgumentException("cuda attention: causal attention saves nothing (its backward is not"
                    + " implemented)");
        }
        Ptr qp = ptr(q, qSize, "q"), kp = ptr(k, kSize, "k"), vp = ptr(v, kSize, "v");
        Ptr o = out(out, qSize, "out"), lse = optionalOut(probs, rows, "saved log-sum-exp");
        if (qSize == 0) return;
        launch(Kernel.FLASH_ATTENTION_FORWARD, attentionGrid(lq, b * heads), Dim.of(FLASH_THREADS),
                o, lse, qp, kp, vp, heads, lq, lk, d, scale, causal ? 1 : 0);
        // q, k, v read and out (and lse) written once: one pass, as a GEMM's operands are counted
        attentionBytes += Float.BYTES * (2 * qSize + 2 * kSize + (lse != null ? rows : 0));
    }

    /** The flash kernels already keep each query's log-sum-exp: the stats are what {@link #attention} saves. */
    @Override
    public void attentionWithStats(Tensor out, Tensor stats, Tensor q, Tensor k, Tensor v,
                                   int b, int heads, int lq, int lk, int d, float scale) {
        attention(out, stats, q, k, v, b, heads, lq, lk, d, scale, false);
    }

    @Override
    public void attentionBackwardFromStats(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                           Tensor out, Tensor stats, int b, int heads, int lq, int lk, int d, float scale) {
        attentionBackward(dq, dk, dv, dOut, q, k, v, stats, b, heads, lq, lk, d, scale);
    }

    /**
     * Recomputes p = exp(scale q kᵀ - lse) tile by tile: first per query row delta = Σ_j p dp (dp = dOut vᵀ) and
     * dq += scale · Σ_j p (dp - delta) k, then per key row dv += Σ_i p dOut and dk += scale · Σ_i p (dp - delta) q.
     */
    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dOut, Tensor q, Tensor k, Tensor v,
                                  Tensor probs, int b, int heads, int lq, int lk, int d, float scale) {
        begin("attentionBackward");
        checkHeadDim(d);
        int ld = heads * d;
        long qSize = (long) b * lq * ld, kSize = (long) b * lk * ld, rows = (long) b * heads * lq;
        Ptr dy = ptr(dOut, qSize, "dOut"), qp = ptr(q, qSize, "q"), kp = ptr(k, kSize, "k"), vp = ptr(v, kSize, "v");
        Ptr lse = ptr(probs, rows, "saved log-sum-exp");
        // gradients still all zeros (fresh from zeros()) are written, not accumulated: no memset
        boolean addDq = dq != null && !pendingZeroCoveredBy(dq, qSize);
        boolean addDk = dk != null && !pendingZeroCoveredBy(dk, kSize);
        boolean addDv = dv != null && !pendingZeroCoveredBy(dv, kSize);
        Ptr dqp = addDq ? ptr(dq, qSize, "dq") : optionalOut(dq, qSize, "dq");
        Ptr dkp = addDk ? ptr(dk, kSize, "dk") : optionalOut(dk, kSize, "dk");
        Ptr dvp = addDv ? ptr(dv, kSize, "dv") : optionalOut(dv, kSize, "dv");
        if (qSize == 0 || kSize == 0 || dqp == null && dkp == null && dvp == null) return;
        CudaAllocator.Block delta = allocator.allocateWorkspace(rows * Float.BYTES, op);
        try {
            Ptr deltaPtr = new Ptr(delta.address());
            launch(Kernel.FLASH_ATTENTION_BACKWARD_QUERY, attentionGrid(lq, b * heads), Dim.of(FLASH_THREADS),
                    dqp, deltaPtr, dy, qp, kp, vp, lse, heads, lq, lk, d, scale, addDq ? 1 : 0);
            launch(Kernel.FLASH_ATTENTION_BACKWARD_KEY, attentionGrid(lk, b * heads), Dim.of(FLASH_THREADS),
                    dkp, dvp, dy, qp, kp, vp, lse, deltaPtr, heads, lq, lk, d, scale, addDk ? 1 : 0, addDv ? 1 : 0);
        } finally {
            allocator.release(delta);
        }
        // query side: q, dOut, lse read, k and v read once per pass (two with dq), delta and dq written (dq read too
        // when accumulated); key side: k, v, q, dOut, lse, delta read, dk and dv written (read when accumulated)
        attentionBytes += Float.BYTES * (2 * qSize + rows + (dqp != null ? 2 : 1) * 2 * kSize + rows
                + (dqp != null ? (addDq ? 2 : 1) * qSize : 0)
                + 2 * kSize + 2 * qSize + 2 * rows
                + (dkp != null ? (addDk ? 2 : 1) * kSize : 0) + (dvp != null ? (addDv ? 2 : 1) * kSize : 0));
    }

    /**
     * Row slices for a column reduction over {@code columnBlocks} blocks of 32 columns: about REDUCTION_BLOCKS
     * blocks in all, each slice at least REDUCTION_MIN_SLICE rows.
     */
    private static int rowSlices(int rows, int columnBlocks) {
        return Math.max(1, Math.min(ceilDiv(REDUCTION_BLOCKS, columnBlocks), rows / REDUCTION_MIN_SLICE));
    }

    private static Dim attentionGrid(int rows, int heads) {
        return Dim.of(ceilDiv(rows, FLASH_ROWS), heads);
    }

    private static void checkHeadDim(int d) {
        if (d < 1 || d > FLASH_MAX_HEAD_DIM) {
            throw new IllegalArgumentException("cuda attention: head dim " + d + " is outside the flash attention"
                    + " kernels' 1.." + FLASH_MAX_HEAD_DIM);
        }
    }

    // ---- activations ---------------------------------------------------------------------------------------

    @Override
    public void silu(Tensor out, Tensor in, long n) {
        begin("silu");
        elementwise(Kernel.SILU_FORWARD, n, out(out, n, "out"), ptr(in, n, "in"), n);
    }

    @Override
    public void siluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        begin("siluBackward");
        elementwise(Kernel.SILU_BACKWARD, n, ptr(dIn, n, "dIn"), ptr(dOut, n, "dOut"), ptr(in, n, "in"), n);
    }

    @Override
    public void gelu(Tensor out, Tensor in, long n) {
        begin("gelu");
        elementwise(Kernel.GELU_FORWARD, n, out(out, n, "out"), ptr(in, n, "in"), n);
    }

    @Override
    public void geluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        begin("geluBackward");
        elementwise(Kernel.GELU_BACKWARD, n, ptr(dIn, n, "dIn"), ptr(dOut, n, "dOut"), ptr(in, n, "in"), n);
    }

    @Override
    public void quickGelu(Tensor out, Tensor in, long n) {
        begin("quickGelu");
        elementwise(Kernel.QUICK_GELU_FORWARD, n, out(out, n, "out"), ptr(in, n, "in"), n);
    }

    @Override
    public void quickGeluBackward(Tensor dIn, Tensor dOut, Tensor in, long n) {
        begin("quickGeluBackward");
        elementwise(Kernel.QUICK_GELU_BACKWARD, n, ptr(dIn, n, "dIn"), ptr(dOut, n, "dOut"), ptr(in, n, "in"), n);
    }

    @Override
    public void geglu(Tensor out, Tensor in, int rows, int cols) {
        begin("geglu");
        long n = (long) rows * cols;
        elementwise(Kernel.GEGLU_FORWARD, n, out(out, n, "out"), ptr(in, 2 * n, "in"), null, rows, cols);
    }

    /** The bias is added as the kernel reads in: no pass of its own. */
    @Override
    public void gegluBias(Tensor out, Tensor in, Tensor bias, int rows, int cols) {
        begin("gegluBias");
        long n = (long) rows * cols;
        elementwise(Kernel.GEGLU_FORWARD, n, out(out, n, "out"), ptr(in, 2 * n, "in"), ptr(bias, 2L * cols, "bias"),
                rows, cols);
    }

    @Override
    public void gegluBackward(Tensor dIn, Tensor dOut, Tensor in, int rows, int cols) {
        begin("gegluBackward");
        long n = (long) rows * cols;
        elementwise(Kernel.GEGLU_BACKWARD, n, ptr(dIn, 2 * n, "dIn"), ptr(dOut, n, "dOut"), ptr(in, 2 * n, "in"),
                null, rows, cols);
    }

    @Override
    public void gegluBiasBackward(Tensor dIn, Tensor dOut, Tensor in, Tensor bias, int rows, int cols) {
        begin("gegluBiasBackward");
        long n = (long) rows * cols;
        elementwise(Kernel.GEGLU_BACKWARD, n, ptr(dIn, 2 * n, "dIn"), ptr(dOut, n, "dOut"), ptr(in, 2 * n, "in"),
                ptr(bias, 2L * cols, "bias"), rows, cols);
    }

    // ---- shape ops -----------------------------------------------------------------------------------------

    @Override
    public void upsampleNearest2x(Tensor out, Tensor in, int nc, int h, int w) {
        begin("upsampleNearest2x");
        long n = (long) nc * h * w;
        elementwise(Kernel.UPSAMPLE_NEAREST2X_FORWARD, 4 * n, out(out, 4 * n, "out"), ptr(in, n, "in"), nc, h, w);
    }

    @Override
    public void upsampleNearest2xBackward(Tensor dIn, Tensor dOut, int nc, int h, int w) {
        begin("upsampleNearest2xBackward");
        long n = (long) nc * h * w;
        elementwise(Kernel.UPSAMPLE_NEAREST2X_BACKWARD, n, ptr(dIn, n, "dIn"), ptr(dOut, 4 * n, "dOut"), nc, h, w);
    }

    @Override
    public void concatChannels(Tensor out, Tensor a, Tensor b, int n, int ca, int cb, int hw) {
        begin("concatChannels");
        long total = (long) n * (ca + cb) * hw;
        elementwise(Kernel.CONCAT_CHANNELS, total, out(out, total, "out"), ptr(a, (long) n * ca * hw, "a"),
                ptr(b, (long) n * cb * hw, "b"), n, ca, cb, hw);
    }

    @Override
    public void splitChannels(Tensor dA, Tensor dB, Tensor dOut, int n, int ca, int cb, int hw) {
        begin("splitChannels");
        if (dA == null && dB == null) return;
        long total = (long) n * (ca + cb) * hw;
        elementwise(Kernel.SPLIT_CHANNELS, total, optional(dA, (long) n * ca * hw, "dA"),
                optional(dB, (long) n * cb * hw, "dB"), ptr(dOut, total, "dOut"), n, ca, cb, hw);
    }

    // ---- elementwise arithmetic ----------------------------------------------------------------------------

    @Override
    public void add(Tensor out, Tensor a, Tensor b, long n) {
        begin("add");
        elementwise(Kernel.ADD, n, out(out, n, "out"), ptr(a, n, "a"), ptr(b, n, "b"), n);
    }

    @Override
    public void axpy(Tensor y, float alpha, Tensor x, long n) {
        begin("axpy");
        elementwise(Kernel.AXPY, n, ptr(y, n, "y"), alpha, ptr(x, n, "x"), n);
    }

    @Override
    public void scale(Tensor out, Tensor x, float alpha, long n) {
        begin("scale");
        elementwise(Kernel.SCALE, n, out(out, n, "out"), ptr(x, n, "x"), alpha, n);
    }

    @Override
    public void linearCombination(Tensor out, float alpha, Tensor a, float beta, Tensor b, long n) {
        begin("linearCombination");
        elementwise(Kernel.LINEAR_COMBINATION, n, out(out, n, "out"), alpha, ptr(a, n, "a"), beta, ptr(b, n, "b"), n);
    }

    @Override
    public void addChannelBias(Tensor y, Tensor bias, int n, int c, int hw) {
        begin("addChannelBias");
        long total = (long) n * c * hw;
        elementwise(Kernel.ADD_CHANNEL_BIAS, total, ptr(y, total, "y"), ptr(bias, (long) n * c, "bias"), n, c, hw, 1);
    }

    @Override
    public void sumChannelBias(Tensor dBias, Tensor dy, int n, int c, int hw) {
        begin("sumChannelBias");
        if (n * c == 0) return;
        launch(Kernel.CHANNEL_BIAS_GRAD, Dim.of(n * c), Dim.of(BLOCK),
                ptr(dBias, (long) n * c, "dBias"), ptr(dy, (long) n * c * hw, "dy"), n, c, hw, 1);
    }

    // ---- embeddings, losses, optimiser ---------------------------------------------------------------------

    @Override
    public void timestepEmbedding(Tensor out, float[] timesteps, int dim, boolean flipSinToCos, float freqShift,
                                  float maxPeriod) {
        begin("timestepEmbedding");
        int n = timesteps.length;
        Ptr o = out(out, (long) n * dim, "out");
        // the timesteps travel as kernel arguments, 4 samples per launch: no upload, so no wait for the stream
        for (int first = 0; first < n; first += TIMESTEPS_PER_LAUNCH) {
            int count = Math.min(TIMESTEPS_PER_LAUNCH, n - first);
            float[] t = Arrays.copyOfRange(timesteps, first, first + TIMESTEPS_PER_LAUNCH); // zero-padded
            elementwise(Kernel.TIMESTEP_EMBEDDING, (long) count * dim,
                    new Ptr(o.address() + (long) first * dim * Float.BYTES), count, dim, flipSinToCos ? 1 : 0,
                    freqShift, (float) -Math.log(maxPeriod), t[0], t[1], t[2], t[3]);
        }
    }

    /** One launch for all n timesteps, read from device memory (a recorded graph reads each replay's values). */
    @Override
    public void timestepEmbedding(Tensor out, Tensor timesteps, int dim, boolean flipSinToCos, float freqShift,
                                  float maxPeriod) {
        begin("timestepEmbedding");
        int n = Math.toIntExact(timesteps.size());
        elementwise(Kernel.TIMESTEP_EMBEDDING_FROM_DEVICE, (long) n * dim, out(out, (long) n * dim, "out"),
                ptr(timesteps, n, "timesteps"), n, dim, flipSinToCos ? 1 : 0, freqShift, (float) -Math.log(maxPeriod));
    }

    @Override
    public float mseLoss(Tensor pred, Tensor target, long n) {
        begin("mseLoss");
        Ptr p = ptr(pred, n, "pred"), t = ptr(target, n, "target");
        long partialBytes = (long) MSE_BLOCKS * Double.BYTES;
        CudaAllocator.Block ws = allocator.allocateWorkspace(partialBytes + Float.BYTES, op);
        try {
            Ptr partial = new Ptr(ws.address()), loss = new Ptr(ws.address() + partialBytes);
            launch(Kernel.MSE_PARTIAL, Dim.of(MSE_BLOCKS), Dim.of(BLOCK), partial, p, t, n);
            launch(Kernel.MSE_FINISH, Dim.of(1), Dim.of(BLOCK), loss, partial, MSE_BLOCKS, n);
            float[] result = new float[1];
            device.download(result, loss.address(), 1);
            return result[0];
        } finally {
            allocator.release(ws);
        }
    }

    @Override
    public void mseLossBackward(Tensor dPred, Tensor pred, Tensor target, long n, float scale) {
        begin("mseLossBackward");
        float factor = (float) (2.0 * scale / n);
        elementwise(Kernel.MSE_BACKWARD, n, ptr(dPred, n, "dPred"), ptr(pred, n, "pred"), ptr(target, n, "target"),
                factor, n);
    }

    /** Scalars as the CPU reference (and torch, from Python floats) computes them: see {@code AdamStep}. */
    @Override
    public void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, long n, int step, float lr, float beta1,
                         float beta2, float eps, float weightDecay) {
        begin("adamStep");
        if (step < 1) throw new IllegalArgumentException("Adam step counts from 1, got " + step);
        double b1 = decimal(beta1), b2 = decimal(beta2);
        float negStepSize = (float) (-decimal(lr) / (1 - Math.pow(b1, step)));
        float bc2Sqrt = (float) Math.sqrt(1 - Math.pow(b2, step));
        elementwise(Kernel.ADAM_STEP, n, ptr(param, n, "param"), ptr(grad, n, "grad"), ptr(m, n, "m"), ptr(v, n, "v"),
                n, (float) b1, (float) (1 - b1), (float) b2, (float) (1 - b2), (float) decimal(eps),
                (float) decimal(weightDecay), negStepSize, bc2Sqrt);
    }

    /** The double a user meant by a float (0.9f → 0.9), as Python holds it. */
    private static double decimal(float x) {
        return Double.parseDouble(Float.toString(x));
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        device.operation("close");
        device.bind();
        try {
            graphs.close();
            allocator.close();
        } finally {
            device.close();
        }
    }

    // ---- plumbing ------------------------------------------------------------------------------------------

    private void begin(String name) {
        if (closed) throw new IllegalStateException("the CUDA backend is closed (" + name + ")");
        op = name;
        overwrittenByThisOp.clear();
        if (bf16 != null) bf16.releaseAll(); // the previous operation's rounded operands
        device.operation(name);
        device.bind();
    }

    /** A tensor of the allocator's (a graph's pool while one is captured), owned by no scope, not zeroed. */
    Tensor allocate(int... shape) {
        long size = Tensor.sizeOf(shape);
        CudaAllocator.Block block = allocator.allocateTensor(Math.max(1, size) * Float.BYTES, op);
        return new Tensor(new CudaStorage(allocator, block, size, CLEANER), 0, shape);
    }

    private void upload(Tensor dst, float[] src, int srcOffset) {
        if (dst.size() > 0) device.upload(out(dst, dst.size(), "dst").address(), src, srcOffset, Math.toIntExact(dst.size()));
    }

    /**
     * Whether {@code t} is a whole storage whose zeros() memset is still pending and an op writing its first
     * {@code elements} covers it, so the op can write instead of accumulate (and no memset is needed).
     */
    private static boolean pendingZeroCoveredBy(Tensor t, long elements) {
        CudaStorage s = storageOf(t);
        return s.zeroPending() && t.offset() == 0 && elements >= s.capacity();
    }

    /**
     * Queues the pending zeros() memset of t's storage, if any: t is about to be read or written in part. Also when
     * this op's {@link #out} has just dropped it: the output is an input too (in place), which must read zeros.
     */
    private void settleZeros(Tensor t) {
        CudaStorage s = storageOf(t);
        if (!s.zeroPending() && !overwrittenByThisOp.remove(s)) return;
        s.zeroPending(false);
        device.fill32(s.address(0), 0, s.capacity());
    }

    private static CudaStorage storageOf(Tensor t) {
        if (t.storage() instanceof CudaStorage s) return s;
        throw new IllegalArgumentException(t + " is not a CUDA tensor (its storage is "
                + t.storage().getClass().getSimpleName() + ")");
    }

    /**
     * The tensor's device address, after checking it holds the {@code elements} the op will touch; the op reads
     * them or adds to them, so a pending zeros() memset is queued first.
     */
    private Ptr ptr(Tensor t, long elements, String what) {
        checkSize(t, elements, what);
        settleZeros(t);
        return new Ptr(float32Address(t, elements, what));
    }

    /**
     * {@link #ptr} of an output the op overwrites, all its first {@code elements}: a pending zeros() memset of a
     * storage they cover is dropped (the tensor was an uninitialised allocation after all).
     */
    private Ptr out(Tensor t, long elements, String what) {
        checkSize(t, elements, what);
        if (pendingZeroCoveredBy(t, elements)) {
            storageOf(t).zeroPending(false);
            overwrittenByThisOp.add(storageOf(t));
        } else {
            settleZeros(t);
        }
        return new Ptr(float32Address(t, elements, what));
    }

    /** t's device address as float32; in a frozen storage, refused for a frozen weight (bf16 GEMM operands only). */
    private long float32Address(Tensor t, long elements, String what) {
        CudaStorage s = storageOf(t);
        FrozenLayout frozen = s.frozen();
        if (frozen == null) return s.address(t.offset());
        long address = frozen.float32Address(t.offset(), elements);
        if (address < 0) {
            throw new IllegalArgumentException("cuda " + op + ": " + what + " " + t + " is a frozen bf16 weight, which"
                    + " only GEMMs and copies read");
        }
        return address;
    }

    /** The bfloat16 address of t's first {@code elements} when they are a frozen weight, else -1. */
    private static long frozenBf16Address(Tensor t, long elements) {
        FrozenLayout frozen = storageOf(t).frozen();
        return frozen == null ? -1 : frozen.bf16Address(t.offset(), elements);
    }

    /**
     * Where a GEMM reads operand t: its float32 address, or in BF16 a bfloat16 one, a frozen weight's own or t's
     * values rounded into a workspace.
     */
    private long gemmOperand(Tensor t, long elements, String what) {
        if (bf16 == null) return ptr(t, elements, what).address();
        checkSize(t, elements, what);
        long frozen = frozenBf16Address(t, elements);
        return frozen >= 0 ? frozen : bf16.rounded(ptr(t, elements, what).address(), elements, op);
    }

    /** A GEMM input at p (float32, {@code elements} of it): p's address, or in BF16 its values rounded to bf16. */
    private long gemmInput(Ptr p, long elements) {
        return bf16 == null ? p.address() : bf16.rounded(p.address(), elements, op);
    }

    /** Bytes per element of what GEMMs multiply: bfloat16 in BF16, else float32. */
    private int gemmInputBytes() {
        return bf16 != null ? Bf16Operands.BYTES : Float.BYTES;
    }

    private void castToBf16(long dst, long src, long n) {
        elementwise(Kernel.CAST_TO_BF16, n, new Ptr(dst), new Ptr(src), n);
    }

    private void checkSize(Tensor t, long elements, String what) {
        if (t == null) throw new IllegalArgumentException("cuda " + op + ": " + what + " is null");
        if (t.size() < elements) {
            throw new IllegalArgumentException("cuda " + op + ": " + what + " " + t + " holds " + t.size()
                    + " elements, the op needs " + elements);
        }
    }

    private Ptr optional(Tensor t, long elements, String what) {
        return t == null ? null : ptr(t, elements, what);
    }

    private Ptr optionalOut(Tensor t, long elements, String what) {
        return t == null ? null : out(t, elements, what);
    }

    /** Elements a batch of strided row-major matrices spans: rows × cols with row stride ld, batch spaced by stride. */
    private static long matrixElements(int rows, int cols, int ld, long stride, int batch) {
        if (rows == 0 || cols == 0) return 0;
        return (batch - 1) * stride + (long) (rows - 1) * ld + cols;
    }

    /** Row-major GEMM on device addresses, through column-major cuBLAS (operands swapped). */
    private void gemmAt(boolean transA, boolean transB, int m, int n, int k, float alpha,
                        long a, int lda, long strideA, long b, int ldb, long strideB,
                        float beta, long c, int ldc, long strideC, int batch) {
        ColumnMajorGemm g = ColumnMajorGemm.fromRowMajor(transA, transB, m, n, k, alpha, lda, strideA, ldb, strideB,
                beta, ldc, strideC, batch);
        // column-major: the row-major B is cuBLAS's A
        if (bf16 != null) {
            device.gemmBf16(g, b, a, c);
            return;
        }
        boolean tf32 = math == MathMode.TF32 || math == MathMode.DEFAULT && CONVOLUTIONS.contains(op);
        device.gemm(g, b, a, c, tf32);
    }

    private void elementwise(Kernel kernel, long n, Object... args) {
        if (n == 0) return;
        int grid = (int) Math.min((n + BLOCK - 1) / BLOCK, MAX_GRID);
        launch(kernel, Dim.of(grid), Dim.of(BLOCK), args);
    }

    private void launch(Kernel kernel, Dim grid, Dim block, Object... args) {
        device.launch(kernel, grid, block, args);
    }

    private static void checkGroups(int c, int groups) {
        if (groups <= 0 || c % groups != 0) {
            throw new IllegalArgumentException(c + " channels do not split into " + groups + " groups");
        }
    }

    private static int ceilDiv(long a, int b) {
        return Math.toIntExact((a + b - 1) / b);
    }
}
