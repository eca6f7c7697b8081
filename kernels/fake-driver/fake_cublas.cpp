// a fake libcublas.so.13 with the 7 functions the backend calls (Cublas.java), on the fake driver's memory. GEMMs
// run on the CPU in float32 accumulation, as a GPU accumulates (TF32 compute rounds the inputs to TF32 first;
// bfloat16 inputs, CUDA_R_16BF, are read as the exact float32 values they stand for, so that products are exact);
// every argument is checked as cuBLAS documents it (operations, sizes, leading dimensions, data and compute
// types, algorithm, the stream, and that every matrix lies inside device memory), and a bad one is refused with
// cuBLAS's status code and a line on stderr. Constants are cublas_api.h's and library_types.h's.
#include "fake_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {
constexpr int SUCCESS = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7, EXECUTION_FAILED = 13, NOT_SUPPORTED = 15;
constexpr int OP_N = 0, OP_T = 1, OP_C = 2;
constexpr int CUDA_R_32F = 0, CUDA_R_16BF = 14;
constexpr int COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69, COMPUTE_32F_FAST_TF32 = 77;
constexpr int DEFAULT_MATH = 0, PEDANTIC_MATH = 2, TF32_TENSOR_OP_MATH = 3, DISALLOW_REDUCED_PRECISION = 16;
constexpr int VERSION = 130000;   // reported as 13.0.0

struct Handle {
    int magic = 0xb1a5;
    void* stream = nullptr;
    int mathMode = DEFAULT_MATH;
};

int refuse(int status, const std::string& why) {
    esdfake_reject(("cuBLAS: " + why).c_str());
    return status;
}

bool live(Handle* h) { return h && h->magic == 0xb1a5; }

// round to TF32 (10 explicit mantissa bits), to nearest even, as tensor cores read float32 inputs
float tf32(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    if ((bits & 0x7f800000u) == 0x7f800000u) return x;   // inf, nan
    bits += 0xfffu + ((bits >> 13) & 1u);
    bits &= ~0x1fffu;
    std::memcpy(&x, &bits, 4);
    return x;
}

struct Matrix {
    const char* name;
    unsigned long long address;
    int rows, cols, ld;   // as stored, column-major
    long long stride;
    int bytes;            // per element: 4 (CUDA_R_32F) or 2 (CUDA_R_16BF)
};

// element i of a matrix of the given type, as float32 (a bf16 value is the top half of the float32 it stands for)
float element(const void* base, long long i, int type) {
    if (type == CUDA_R_32F) return static_cast<const float*>(base)[i];
    uint32_t bits = (uint32_t) static_cast<const uint16_t*>(base)[i] << 16;
    float x;
    std::memcpy(&x, &bits, 4);
    return x;
}

// the bytes [first, last] element a batch of matrices touches
int checkMatrix(const char* call, const Matrix& x, int batch) {
    if (x.ld < std::max(1, x.rows)) {
        return refuse(INVALID_VALUE, std::string(call) + ": ld" + x.name + " " + std::to_string(x.ld)
                                     + " < rows " + std::to_string(x.rows));
    }
    if (x.rows == 0 || x.cols == 0 || batch == 0) return SUCCESS;
    if (x.stride < 0) return refuse(INVALID_VALUE, std::string(call) + ": negative stride" + x.name);
    unsigned long long elements = (unsigned long long) (batch - 1) * x.stride + (unsigned long long) (x.cols - 1) * x.ld
                                  + x.rows;
    if (x.address % x.bytes || !esdfake_device_range(x.address, (unsigned long long) x.bytes * elements)) {
        char why[240];
        std::snprintf(why, sizeof why, "%s: %s (%d x %d, ld %d, stride %lld, batch %d) at 0x%llx is not inside one"
                      " device allocation", call, x.name, x.rows, x.cols, x.ld, x.stride, batch, x.address);
        return refuse(EXECUTION_FAILED, why);   // on a GPU: an illegal address
    }
    return SUCCESS;
}

// C = al op(A) op(B) + be C over the batch, float accumulation as on the GPU (TF32 rounding of the inputs when asked;
// A and B of type atype and btype: CUDA_R_32F, or CUDA_R_16BF read as the float32 values they stand for)
void multiply(bool ta, bool tb, int m, int n, int k, float al, const void* a, int atype, int lda, long long strideA,
              const void* b, int btype, int ldb, long long strideB, float be, void* c, int ldc, long long strideC,
              int batch, bool roundTf32) {
    float* cv = static_cast<float*>(c);
    std::vector<float> row(k);
    for (int p = 0; p < batch; p++) {
        long long ap = p * strideA, bp = p * strideB;
        float* cp = cv + p * strideC;
        for (int i = 0; i < m; i++) {
            for (int l = 0; l < k; l++) {
                float x = element(a, ap + (ta ? l + (long long) i * lda : i + (long long) l * lda), atype);
                row[l] = roundTf32 ? tf32(x) : x;
            }
            for (int j = 0; j < n; j++) {
                float sum = 0;   // float accumulation, as on the GPU
                for (int l = 0; l < k; l++) {
                    float y = element(b, bp + (tb ? j + (long long) l * ldb : l + (long long) j * ldb), btype);
                    sum += row[l] * (roundTf32 ? tf32(y) : y);
                }
                float& out = cp[i + (long long) j * ldc];
                out = al * sum + (be == 0 ? 0 : be * out);   // beta 0: C is not read (it may be garbage)
            }
        }
    }
}

int gemm(const char* call, void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
         const void* a, int atype, int lda, long long strideA, const void* b, int btype, int ldb, long long strideB,
         const void* beta, void* c, int ctype, int ldc, long long strideC, int batch, int computeType, int algo) {
    EsdfakeCallTimer timer;
    Handle* h = static_cast<Handle*>(handle);
    if (!live(h)) return refuse(NOT_INITIALIZED, std::string(call) + ": not a live handle");
    if (!esdfake_context_current()) return refuse(EXECUTION_FAILED, std::string(call) + ": no current context");
    if (!esdfake_stream_valid(h->stream)) return refuse(EXECUTION_FAILED, std::string(call) + ": the handle's stream is gone");
    for (int op : {transa, transb}) {
        if (op != OP_N && op != OP_T && op != OP_C) return refuse(INVALID_VALUE, std::string(call) + ": bad operation " + std::to_string(op));
    }
    if (m < 0 || n < 0 || k < 0 || batch < 0) return refuse(INVALID_VALUE, std::string(call) + ": negative size");
    // the combinations the fake knows, of those cuBLAS documents for float32 compute: A, B, C all CUDA_R_32F, or
    // A and B CUDA_R_16BF with C CUDA_R_32F (bf16 products, float32 accumulation and output)
    bool bf16Inputs = atype == CUDA_R_16BF && btype == CUDA_R_16BF && ctype == CUDA_R_32F;
    if (!bf16Inputs && (atype != CUDA_R_32F || btype != CUDA_R_32F || ctype != CUDA_R_32F)) {
        return refuse(NOT_SUPPORTED, std::string(call) + ": data types A " + std::to_string(atype) + ", B "
                                     + std::to_string(btype) + ", C " + std::to_string(ctype)
                                     + " (the fake knows all CUDA_R_32F, or CUDA_R_16BF A and B with CUDA_R_32F C)");
    }
    if (computeType != COMPUTE_32F && computeType != COMPUTE_32F_PEDANTIC && computeType != COMPUTE_32F_FAST_TF32) {
        return refuse(INVALID_VALUE, std::string(call) + ": compute type " + std::to_string(computeType)
                                     + " is not a float32 compute type");
    }
    if (bf16Inputs && computeType == COMPUTE_32F_FAST_TF32) {
        return refuse(NOT_SUPPORTED, std::string(call) + ": CUBLAS_COMPUTE_32F_FAST_TF32 with CUDA_R_16BF inputs");
    }
    int abBytes = bf16Inputs ? 2 : 4;
    if (!(algo == -1 || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115))) {
        return refuse(INVALID_VALUE, std::string(call) + ": algorithm " + std::to_string(algo));
    }
    if (!alpha || !beta) return refuse(INVALID_VALUE, std::string(call) + ": null alpha or beta");
    float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);   // host pointer mode
    bool ta = transa != OP_N, tb = transb != OP_N;
    Matrix A{"a", reinterpret_cast<unsigned long long>(a), ta ? k : m, ta ? m : k, lda, strideA, abBytes};
    Matrix B{"b", reinterpret_cast<unsigned long long>(b), tb ? n : k, tb ? k : n, ldb, strideB, abBytes};
    Matrix C{"c", reinterpret_cast<unsigned long long>(c), m, n, ldc, strideC, 4};
    if (m == 0 || n == 0 || batch == 0) return SUCCESS;
    bool readsAB = k > 0 && al != 0;
    if (readsAB) {
        if (int s = checkMatrix(call, A, batch)) return s;
        if (int s = checkMatrix(call, B, batch)) return s;
    } else if (lda < std::max(1, A.rows) || ldb < std::max(1, B.rows)) {
        return refuse(INVALID_VALUE, std::string(call) + ": lda or ldb below its matrix's rows");
    }
    if (int s = checkMatrix(call, C, batch)) return s;
    // the batch's C matrices must not share an element: apart, or interleaved within the columns (attention's heads)
    bool apart = strideC >= (long long) (n - 1) * ldc + m;
    bool interleaved = strideC >= m && (long long) (batch - 1) * strideC + m <= ldc;
    if (batch > 1 && !apart && !interleaved) {
        return refuse(INVALID_VALUE, std::string(call) + ": the batch's C matrices overlap (strideC "
                                     + std::to_string(strideC) + ")");
    }
    esdfake_count_gemm();
    // the device's part: now, or at each launch of the graph capturing the handle's stream (alpha and beta, host
    // pointer mode, are read now, as cuBLAS reads them at the call)
    return esdfake_enqueue(h->stream, [=]() -> int {
        if (readsAB) {
            if (int s = checkMatrix(call, A, batch)) return s;
            if (int s = checkMatrix(call, B, batch)) return s;
        }
        if (int s = checkMatrix(call, C, batch)) return s;
        esdfake_count_multiply_adds((long long) m * n * k * batch);
        if (esdfake_count_only()) return SUCCESS;
        multiply(ta, tb, m, n, k, al, a, atype, lda, strideA, b, btype, ldb, strideB, be, c, ldc, strideC, batch,
                 computeType == COMPUTE_32F_FAST_TF32);
        return SUCCESS;
    });
}
} // namespace

extern "C" {
int cublasCreate_v2(void** handle) {
    if (!handle) return refuse(INVALID_VALUE, "cublasCreate: null");
    if (!esdfake_context_current()) return refuse(NOT_INITIALIZED, "cublasCreate: no current CUDA context");
    *handle = new Handle;
    return SUCCESS;
}

int cublasDestroy_v2(void* handle) {
    Handle* h = static_cast<Handle*>(handle);
    if (!live(h)) return refuse(NOT_INITIALIZED, "cublasDestroy: not a live handle");
    h->magic = 0;
    delete h;
    return SUCCESS;
}

int cublasSetStream_v2(void* handle, void* stream) {
    Handle* h = static_cast<Handle*>(handle);
    if (!live(h)) return refuse(NOT_INITIALIZED, "cublasSetStream: not a live handle");
    if (!esdfake_stream_valid(stream)) return refuse(INVALID_VALUE, "cublasSetStream: not a live stream");
    h->stream = stream;
    return SUCCESS;
}

int cublasSetMathMode(void* handle, int mode) {
    Handle* h = static_cast<Handle*>(handle);
    if (!live(h)) return refuse(NOT_INITIALIZED, "cublasSetMathMode: not a live handle");
    int base = mode & ~DISALLOW_REDUCED_PRECISION;
    if (base != DEFAULT_MATH && base != PEDANTIC_MATH && base != TF32_TENSOR_OP_MATH) {
        return refuse(INVALID_VALUE, "cublasSetMathMode: mode " + std::to_string(mode));
    }
    h->mathMode = mode;
    return SUCCESS;
}

int cublasGetVersion_v2(void* handle, int* version) {
    if (!live(static_cast<Handle*>(handle))) return refuse(NOT_INITIALIZED, "cublasGetVersion: not a live handle");
    if (!version) return refuse(INVALID_VALUE, "cublasGetVersion: null");
    *version = VERSION;
    return SUCCESS;
}

int cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* a,
                 int atype, int lda, const void* b, int btype, int ldb, const void* beta, void* c, int ctype, int ldc,
                 int computeType, int algo) {
    return gemm("cublasGemmEx", handle, transa, transb, m, n, k, alpha, a, atype, lda, 0, b, btype, ldb, 0, beta, c,
                ctype, ldc, 0, 1, computeType, algo);
}

int cublasGemmStridedBatchedEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                               const void* a, int atype, int lda, long long strideA, const void* b, int btype, int ldb,
                               long long strideB, const void* beta, void* c, int ctype, int ldc, long long strideC,
                               int batch, int computeType, int algo) {
    return gemm("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, a, atype, lda, strideA, b, btype,
                ldb, strideB, beta, c, ctype, ldc, strideC, batch, computeType, algo);
}
} // extern "C"
