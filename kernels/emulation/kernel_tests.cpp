// every kernel, run on the cpu emulator (emulator.h) and compared with a plain double-precision loop written
// from the op's definition. launch shapes mirror CudaBackend's, with small grids so grid-stride loops wrap.
// build and run: kernels/emulation/run.sh (the unit test KernelEmulationTest does).
#include "emulator.h"

#include "../activations.cu"
#include "../adam.cu"
#include "../arithmetic.cu"
#include "../bf16.cu"
#include "../bias.cu"
#include "../flash_attention.cu"
#include "../group_norm.cu"
#include "../im2col.cu"
#include "../layer_norm.cu"
#include "../layout.cu"
#include "../mse.cu"
#include "../residual.cu"
#include "../softmax.cu"
#include "../timestep_embedding.cu"

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>

using emu::launch;
using Vec = std::vector<float>;

static std::mt19937 rng(12345);
static int failures = 0;

static Vec random_vec(size_t n, float low = -1, float high = 1) {
    std::uniform_real_distribution<float> d(low, high);
    Vec v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// ||a - ref|| / ||ref|| against a double reference
static void check(const std::string& name, const Vec& a, const std::vector<double>& ref, double tol = 1e-5) {
    double diff = 0, norm = 0;
    bool nan = a.size() != ref.size();
    for (size_t i = 0; i < ref.size() && !nan; i++) {
        if (std::isnan(a[i])) nan = true;
        diff += (a[i] - ref[i]) * (a[i] - ref[i]);
        norm += ref[i] * ref[i];
    }
    double err = norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
    bool ok = !nan && err <= tol;
    if (!ok) failures++;
    std::printf("%-34s %s  rel.error %.2e\n", name.c_str(), ok ? "pass" : "FAIL", nan ? NAN : err);
}

static std::vector<double> to_double(const Vec& v) { return std::vector<double>(v.begin(), v.end()); }

static dim3 d1(unsigned x) { return {x, 1, 1}; }

static void arithmetic_and_activations() {
    long long n = 1000;
    Vec a = random_vec(n), b = random_vec(n), out(n, NAN);
    launch(linear_combination, d1(3), d1(64), out.data(), 0.8f, (const float*) a.data(), -1.3f, (const float*) b.data(), n);
    std::vector<double> ref(n);
    for (int i = 0; i < n; i++) ref[i] = 0.8 * a[i] - 1.3 * b[i];
    check("linear_combination", out, ref);

    Vec y = a;   // in place: out aliases the input
    launch(add, d1(2), d1(64), y.data(), (const float*) y.data(), (const float*) b.data(), n);
    for (int i = 0; i < n; i++) ref[i] = (double) a[i] + b[i];
    check("add in place", y, ref);

    Vec x = random_vec(n, -6, 6), dOut = random_vec(n), dIn = random_vec(n), dIn0 = dIn;
    launch(silu_backward, d1(3), d1(64), dIn.data(), (const float*) dOut.data(), (const float*) x.data(), n);
    for (int i = 0; i < n; i++) {
        double s = 1 / (1 + std::exp(-(double) x[i]));
        ref[i] = dIn0[i] + dOut[i] * s * (1 + x[i] * (1 - s));
    }
    check("silu_backward", dIn, ref);

    launch(gelu_forward, d1(3), d1(64), out.data(), (const float*) x.data(), n);
    for (int i = 0; i < n; i++) ref[i] = x[i] * 0.5 * std::erfc(-x[i] / std::sqrt(2.0));
    check("gelu_forward", out, ref);

    // geglu without and with the projection's bias folded in
    int rows = 7, cols = 13;
    Vec in = random_vec(rows * 2 * cols, -3, 3), bias = random_vec(2 * cols);
    for (bool withBias : {false, true}) {
        const float* b = withBias ? bias.data() : nullptr;
        std::string label = withBias ? " with bias" : "";
        auto biased = [&](int r, int c) { return (double) in[r * 2 * cols + c] + (withBias ? bias[c] : 0.0); };
        Vec g(rows * cols, NAN);
        launch(geglu_forward, d1(1), d1(64), g.data(), (const float*) in.data(), b, rows, cols);
        std::vector<double> gref(rows * cols);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                double h = biased(r, c), gate = biased(r, cols + c);
                gref[r * cols + c] = h * gate * 0.5 * std::erfc(-gate / std::sqrt(2.0));
            }
        check("geglu_forward" + label, g, gref);

        Vec dg = random_vec(rows * cols), dgin = random_vec(rows * 2 * cols), dgin0 = dgin;
        launch(geglu_backward, d1(2), d1(32), dgin.data(), (const float*) dg.data(), (const float*) in.data(), b,
               rows, cols);
        std::vector<double> dref = to_double(dgin0);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                double h = biased(r, c), gate = biased(r, cols + c), up = dg[r * cols + c];
                double cdf = 0.5 * std::erfc(-gate / std::sqrt(2.0)), pdf = std::exp(-0.5 * gate * gate) / std::sqrt(2 * M_PI);
                dref[r * 2 * cols + c] += up * gate * cdf;
                dref[r * 2 * cols + cols + c] += up * h * (cdf + gate * pdf);
            }
        check("geglu_backward" + label, dgin, dref);
    }
}

// one group norm case, launched as CudaBackend does (grid (n * c, pieces)), forward and backward, against double
// loops: GroupNorm, optionally followed by SiLU (then the backward's incoming gradient is SiLU's output's)
struct GroupNormCase {
    int n, c, hw, groups, pieces, threads;
    bool silu;
};

static double silu_slope(double y) {
    double s = 1 / (1 + std::exp(-y));
    return s * (1 + y * (1 - s));
}

static void group_norm_case(const GroupNormCase& s) {
    int cpg = s.c / s.groups, stats = s.n * s.groups;
    size_t size = (size_t) s.n * s.c * s.hw, count = (size_t) cpg * s.hw;
    float eps = 1e-5f;
    std::string name = "group_norm" + std::string(s.silu ? "+silu " : " ") + std::to_string(s.n) + "x" +
                       std::to_string(s.c) + "x" + std::to_string(s.hw) + " g" + std::to_string(s.groups) + " p" +
                       std::to_string(s.pieces);
    Vec x = random_vec(size, -2, 3), gamma = random_vec(s.c), beta = random_vec(s.c);
    Vec out(size, NAN), mean(stats, NAN), rstd(stats, NAN);
    std::vector<double> partial((size_t) s.n * s.c * s.pieces * 2, NAN);
    dim3 grid{(unsigned) (s.n * s.c), (unsigned) s.pieces, 1}, block = d1(s.threads);
    launch(group_norm_stats, grid, block, partial.data(), (const float*) x.data(), s.hw);
    launch(group_norm_apply, grid, block, out.data(), mean.data(), rstd.data(), (const double*) partial.data(),
           (const float*) x.data(), (const float*) gamma.data(), (const float*) beta.data(), s.c, s.hw, s.groups, eps,
           (int) s.silu);
    std::vector<double> ref(size), mref(stats), rref(stats);
    for (int sg = 0; sg < stats; sg++) {
        const float* g = x.data() + sg * count;
        double m = 0, v = 0;
        for (size_t i = 0; i < count; i++) m += g[i];
        m /= count;
        for (size_t i = 0; i < count; i++) v += (g[i] - m) * (g[i] - m);
        double r = 1 / std::sqrt(v / count + eps);
        mref[sg] = m;
        rref[sg] = r;
        for (size_t i = 0; i < count; i++) {
            int ch = (sg % s.groups) * cpg + (int) (i / s.hw);
            double y = (g[i] - m) * r * gamma[ch] + beta[ch];
            ref[sg * count + i] = s.silu ? y / (1 + std::exp(-y)) : y;
        }
    }
    check(name + " out", out, ref);
    check(name + " mean", mean, mref);
    check(name + " rstd", rstd, rref);

    // backward from the saved (float) statistics, as the kernels compute it
    Vec dOut = random_vec(size), dIn = random_vec(size), dIn0 = dIn;
    Vec dGamma = random_vec(s.c), dBeta = random_vec(s.c);
    std::vector<double> dref = to_double(dIn0), gref = to_double(dGamma), bref = to_double(dBeta);
    launch(group_norm_backward_sums, grid, block, partial.data(), (const float*) dOut.data(), (const float*) x.data(),
           (const float*) mean.data(), (const float*) rstd.data(), (const float*) gamma.data(),
           (const float*) beta.data(), s.c, s.hw, s.groups, (int) s.silu);
    launch(group_norm_backward_input, grid, block, dIn.data(), (const double*) partial.data(),
           (const float*) dOut.data(), (const float*) x.data(), (const float*) mean.data(), (const float*) rstd.data(),
           (const float*) gamma.data(), (const float*) beta.data(), s.c, s.hw, s.groups, (int) s.silu);
    emu::launch_plain(group_norm_backward_params, d1(3), d1(32), dGamma.data(), dBeta.data(),
                      (const double*) partial.data(), s.n, s.c, s.pieces);
    std::vector<double> dy(count), xhat(count);
    for (int sg = 0; sg < stats; sg++) {
        double m = mean[sg], r = rstd[sg], a = 0, b = 0;
        for (size_t i = 0; i < count; i++) {
            int ch = (sg % s.groups) * cpg + (int) (i / s.hw);
            size_t at = sg * count + i;
            xhat[i] = (x[at] - m) * r;
            dy[i] = s.silu ? dOut[at] * silu_slope(xhat[i] * gamma[ch] + beta[ch]) : dOut[at];
            a += dy[i] * gamma[ch];
            b += dy[i] * gamma[ch] * xhat[i];
            gref[ch] += dy[i] * xhat[i];
            bref[ch] += dy[i];
        }
        a /= count;
        b /= count;
        for (size_t i = 0; i < count; i++) {
            int ch = (sg % s.groups) * cpg + (int) (i / s.hw);
            dref[sg * count + i] += r * (dy[i] * gamma[ch] - a - xhat[i] * b);
        }
    }
    check(name + " dIn", dIn, dref);
    check(name + " dGamma", dGamma, gref);
    check(name + " dBeta", dBeta, bref);
}

static void group_norm() {
    for (bool silu : {false, true}) {
        group_norm_case({2, 12, 37, 4, 1, 64, silu});        // odd sizes
        group_norm_case({2, 12, 37, 4, 3, 32, silu});        // planes in pieces, the last one shorter
        group_norm_case({1, 4, 10, 2, 6, 32, silu});         // more pieces than a plane fills: an empty piece
        group_norm_case({2, 32, 256, 8, 1, 128, silu});      // the tiny models' 16x16 latents
        group_norm_case({2, 96, 64, 8, 1, 64, silu});
        group_norm_case({2, 320, 4096, 32, 1, 256, silu});   // sd 1.4 at 512 px, batch 2: 64x64
        group_norm_case({2, 1280, 64, 32, 1, 64, silu});     // 8x8
    }
    group_norm_case({2, 2560, 64, 32, 1, 64, true});         // the up blocks' concatenations
    group_norm_case({1, 128, 16384, 32, 3, 256, true});      // a batch-1 vae: planes in pieces
}

static void layer_norm() {
    int rows = 19, cols = 45;
    float eps = 1e-5f;
    Vec x = random_vec(rows * cols), gamma = random_vec(cols), beta = random_vec(cols);
    Vec out(x.size(), NAN), mean(rows, NAN), rstd(rows, NAN);
    launch(layer_norm_forward, d1((rows + 7) / 8), d1(256), out.data(), mean.data(), rstd.data(),
           (const float*) x.data(), (const float*) gamma.data(), (const float*) beta.data(), rows, cols, eps);
    std::vector<double> ref(x.size());
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < cols; j++) m += x[r * cols + j];
        m /= cols;
        for (int j = 0; j < cols; j++) v += (x[r * cols + j] - m) * (x[r * cols + j] - m);
        double rs = 1 / std::sqrt(v / cols + eps);
        for (int j = 0; j < cols; j++) ref[r * cols + j] = (x[r * cols + j] - m) * rs * gamma[j] + beta[j];
    }
    check("layer_norm_forward", out, ref);

    Vec dOut = random_vec(x.size()), dIn = random_vec(x.size()), dIn0 = dIn;
    launch(layer_norm_backward_input, d1((rows + 7) / 8), d1(256), dIn.data(), (const float*) dOut.data(),
           (const float*) x.data(), (const float*) mean.data(), (const float*) rstd.data(), (const float*) gamma.data(),
           rows, cols);
    std::vector<double> dref = to_double(dIn0);
    for (int r = 0; r < rows; r++) {
        double a = 0, b = 0;
        for (int j = 0; j < cols; j++) {
            double xhat = (x[r * cols + j] - mean[r]) * rstd[r];
            a += dOut[r * cols + j] * gamma[j];
            b += dOut[r * cols + j] * gamma[j] * xhat;
        }
        a /= cols;
        b /= cols;
        for (int j = 0; j < cols; j++) {
            double xhat = (x[r * cols + j] - mean[r]) * rstd[r];
            dref[r * cols + j] += rstd[r] * (dOut[r * cols + j] * gamma[j] - a - xhat * b);
        }
    }
    check("layer_norm_backward_input", dIn, dref, 2e-5);

    Vec dGamma = random_vec(cols), dBeta = random_vec(cols);
    std::vector<double> gref = to_double(dGamma), bref = to_double(dBeta);
    unsigned slices = 2;
    std::vector<double> partialGamma((size_t) slices * cols, NAN), partialBeta((size_t) slices * cols, NAN);
    launch(layer_norm_backward_params, dim3{(unsigned) (cols + 31) / 32, slices, 1}, dim3{32, 16, 1},
           partialGamma.data(), partialBeta.data(), (const float*) dOut.data(), (const float*) x.data(),
           (const float*) mean.data(), (const float*) rstd.data(), rows, cols);
    emu::launch_plain(sum_rows_finish, d1(1), d1(32), dGamma.data(), (const double*) partialGamma.data(), (int) slices,
                      cols);
    emu::launch_plain(sum_rows_finish, d1(1), d1(32), dBeta.data(), (const double*) partialBeta.data(), (int) slices,
                      cols);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            gref[j] += dOut[r * cols + j] * (x[r * cols + j] - mean[r]) * rstd[r];
            bref[j] += dOut[r * cols + j];
        }
    check("layer_norm_backward_params dGamma, 2 slices", dGamma, gref);
    check("layer_norm_backward_params dBeta, 2 slices", dBeta, bref);
}

static void softmax() {
    int heads = 3, lq = 9, cols = 9, rows = heads * lq;
    Vec x = random_vec(rows * cols, -5, 5), out(x.size(), NAN);
    for (int causal = 0; causal <= 1; causal++) {
        launch(softmax_forward, d1((rows + 7) / 8), d1(256), out.data(), (const float*) x.data(), rows, cols, causal, lq);
        std::vector<double> ref(x.size(), 0.0);
        for (int r = 0; r < rows; r++) {
            int valid = causal ? std::min(cols, r % lq + 1) : cols;
            double mx = -1e30, sum = 0;
            for (int j = 0; j < valid; j++) mx = std::max(mx, (double) x[r * cols + j]);
            for (int j = 0; j < valid; j++) sum += std::exp(x[r * cols + j] - mx);
            for (int j = 0; j < valid; j++) ref[r * cols + j] = std::exp(x[r * cols + j] - mx) / sum;
        }
        check(causal ? "softmax_forward causal" : "softmax_forward", out, ref);
    }
    Vec dOut = random_vec(x.size()), dIn = random_vec(x.size()), dIn0 = dIn;
    launch(softmax_backward, d1((rows + 7) / 8), d1(256), dIn.data(), (const float*) dOut.data(),
           (const float*) out.data(), rows, cols, 1);
    std::vector<double> dref = to_double(dIn0);
    for (int r = 0; r < rows; r++) {
        double dot = 0;
        for (int j = 0; j < cols; j++) dot += (double) dOut[r * cols + j] * out[r * cols + j];
        for (int j = 0; j < cols; j++) dref[r * cols + j] += out[r * cols + j] * (dOut[r * cols + j] - dot);
    }
    check("softmax_backward", dIn, dref);
}

static void layout() {
    int nc = 3, h = 5, w = 7;
    Vec in = random_vec(nc * h * w), up(nc * 4 * h * w, NAN);
    launch(upsample_nearest2x_forward, d1(2), d1(64), up.data(), (const float*) in.data(), nc, h, w);
    std::vector<double> ref(up.size());
    for (int p = 0; p < nc; p++)
        for (int y = 0; y < 2 * h; y++)
            for (int x = 0; x < 2 * w; x++) ref[(p * 2 * h + y) * 2 * w + x] = in[(p * h + y / 2) * w + x / 2];
    check("upsample_nearest2x_forward", up, ref);

    Vec dUp = random_vec(up.size()), dIn = random_vec(in.size()), dIn0 = dIn;
    launch(upsample_nearest2x_backward, d1(1), d1(32), dIn.data(), (const float*) dUp.data(), nc, h, w);
    std::vector<double> dref = to_double(dIn0);
    for (int p = 0; p < nc; p++)
        for (int y = 0; y < 2 * h; y++)
            for (int x = 0; x < 2 * w; x++) dref[(p * h + y / 2) * w + x / 2] += dUp[(p * 2 * h + y) * 2 * w + x];
    check("upsample_nearest2x_backward", dIn, dref);

    int n = 2, ca = 3, cb = 4, hw = 11;
    Vec a = random_vec(n * ca * hw), b = random_vec(n * cb * hw), cat(n * (ca + cb) * hw, NAN);
    launch(concat_channels, d1(2), d1(64), cat.data(), (const float*) a.data(), (const float*) b.data(), n, ca, cb, hw);
    std::vector<double> cref;
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < ca * hw; i++) cref.push_back(a[s * ca * hw + i]);
        for (int i = 0; i < cb * hw; i++) cref.push_back(b[s * cb * hw + i]);
    }
    check("concat_channels", cat, cref);
    Vec da = random_vec(a.size()), db = random_vec(b.size());
    std::vector<double> daref = to_double(da), dbref = to_double(db);
    launch(split_channels, d1(2), d1(64), da.data(), db.data(), (const float*) cat.data(), n, ca, cb, hw);
    for (size_t i = 0; i < a.size(); i++) daref[i] += a[i];
    for (size_t i = 0; i < b.size(); i++) dbref[i] += b[i];
    check("split_channels dA", da, daref);
    check("split_channels dB", db, dbref);

    int batch = 2, rows = 37, cols = 45;
    Vec t = random_vec(batch * rows * cols), tt(t.size(), NAN);
    launch(transpose, dim3{(unsigned) (cols + 31) / 32, (unsigned) (rows + 31) / 32, (unsigned) batch}, dim3{32, 8, 1},
           tt.data(), (const float*) t.data(), rows, cols);
    std::vector<double> tref(t.size());
    for (int bi = 0; bi < batch; bi++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) tref[(bi * cols + c) * rows + r] = t[(bi * rows + r) * cols + c];
    check("transpose", tt, tref);
}

static void bias() {
    int rows = 21, cols = 37;
    Vec dy = random_vec(rows * cols), dBias = random_vec(cols);
    std::vector<double> ref = to_double(dBias);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) ref[c] += dy[r * cols + c];
    for (unsigned slices : {1u, 3u}) {
        Vec sums = dBias;
        std::vector<double> partial((size_t) slices * cols, NAN);
        launch(sum_rows, dim3{(unsigned) (cols + 31) / 32, slices, 1}, dim3{32, 16, 1}, partial.data(),
               (const float*) dy.data(), rows, cols);
        emu::launch_plain(sum_rows_finish, d1(1), d1(32), sums.data(), (const double*) partial.data(), (int) slices, cols);
        check("sum_rows + finish, " + std::to_string(slices) + " slices", sums, ref);
    }

    int n = 2, c = 5, hw = 13;
    for (int perSample = 0; perSample <= 1; perSample++) {
        Vec y = random_vec(n * c * hw), b = random_vec(perSample ? n * c : c);
        std::vector<double> yref = to_double(y);
        launch(add_channel_bias, d1(2), d1(32), y.data(), (const float*) b.data(), n, c, hw, perSample);
        for (int s = 0; s < n; s++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++) yref[(s * c + ch) * hw + p] += b[perSample ? s * c + ch : ch];
        check(perSample ? "add_channel_bias per sample" : "add_channel_bias", y, yref);

        Vec g = random_vec(n * c * hw), db = random_vec(perSample ? n * c : c);
        std::vector<double> dbref = to_double(db);
        launch(channel_bias_grad, d1(perSample ? n * c : c), d1(64), db.data(), (const float*) g.data(), n, c, hw,
               perSample);
        for (int s = 0; s < n; s++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++) dbref[perSample ? s * c + ch : ch] += g[(s * c + ch) * hw + p];
        check(perSample ? "channel_bias_grad per sample" : "channel_bias_grad", db, dbref);
    }
}

// bias and residual (or a per-sample bias) in one pass, with and without a bias; small grids so that the
// grid-stride loops wrap
static void residual() {
    int n = 2, c = 5, hw = 13;
    Vec r = random_vec(n * c * hw), b = random_vec(c);
    for (bool withBias : {true, false}) {
        Vec y = random_vec(n * c * hw);
        std::vector<double> yref = to_double(y);
        launch(add_channel_bias_residual, d1(2), d1(32), y.data(), withBias ? (const float*) b.data() : nullptr,
               (const float*) r.data(), n, c, hw);
        for (int i = 0; i < n * c * hw; i++) yref[i] += (withBias ? b[(i / hw) % c] : 0.0) + r[i];
        check(withBias ? "add_channel_bias_residual" : "add_channel_bias_residual, no bias", y, yref);
    }
    Vec sampleBias = random_vec(n * c);
    for (bool withBias : {true, false}) {
        Vec y = random_vec(n * c * hw);
        std::vector<double> yref = to_double(y);
        launch(add_channel_biases, d1(2), d1(32), y.data(), withBias ? (const float*) b.data() : nullptr,
               (const float*) sampleBias.data(), n, c, hw);
        for (int i = 0; i < n * c * hw; i++) yref[i] += (withBias ? b[(i / hw) % c] : 0.0) + sampleBias[i / hw];
        check(withBias ? "add_channel_biases" : "add_channel_biases, no bias", y, yref);
    }
    int rows = 21, cols = 37;
    Vec y = random_vec(rows * cols), rr = random_vec(rows * cols), rb = random_vec(cols);
    std::vector<double> yref = to_double(y);
    launch(add_row_bias_residual, d1(3), d1(64), y.data(), (const float*) rb.data(), (const float*) rr.data(), rows, cols);
    for (int i = 0; i < rows * cols; i++) yref[i] += rb[i % cols] + rr[i];
    check("add_row_bias_residual", y, yref);
}

static void im2col_col2im() {
    struct Shape { int n, c, h, w, r, s, stride, pad; };
    for (Shape sh : {Shape{2, 3, 7, 9, 3, 3, 1, 1}, Shape{1, 2, 8, 11, 3, 3, 2, 1}, Shape{1, 2, 6, 6, 1, 1, 1, 0}}) {
        int oh = (sh.h + 2 * sh.pad - sh.r) / sh.stride + 1, ow = (sh.w + 2 * sh.pad - sh.s) / sh.stride + 1;
        size_t colSize = (size_t) sh.n * sh.c * sh.r * sh.s * oh * ow, inSize = (size_t) sh.n * sh.c * sh.h * sh.w;
        Vec x = random_vec(inSize), col(colSize, NAN);
        launch(im2col, d1(3), d1(64), col.data(), (const float*) x.data(), sh.n, sh.c, sh.h, sh.w, sh.r, sh.s,
               sh.stride, sh.pad, oh, ow);
        std::vector<double> ref(colSize);
        for (int ni = 0; ni < sh.n; ni++)
            for (int ci = 0; ci < sh.c; ci++)
                for (int ki = 0; ki < sh.r; ki++)
                    for (int kj = 0; kj < sh.s; kj++)
                        for (int oy = 0; oy < oh; oy++)
                            for (int ox = 0; ox < ow; ox++) {
                                int y = oy * sh.stride - sh.pad + ki, xx = ox * sh.stride - sh.pad + kj;
                                size_t row = ((size_t) (ni * sh.c + ci) * sh.r + ki) * sh.s + kj;
                                ref[row * oh * ow + oy * ow + ox] = (y >= 0 && y < sh.h && xx >= 0 && xx < sh.w)
                                        ? x[((size_t) (ni * sh.c + ci) * sh.h + y) * sh.w + xx] : 0.0;
                            }
        check("im2col " + std::to_string(sh.r) + "x" + std::to_string(sh.s) + " s" + std::to_string(sh.stride), col, ref);

        // col2im is im2col's adjoint: it scatters ref's column entries back onto the pixels they came from
        Vec dcol = random_vec(colSize), dIn = random_vec(inSize);
        std::vector<double> dref = to_double(dIn);
        for (int ni = 0; ni < sh.n; ni++)
            for (int ci = 0; ci < sh.c; ci++)
                for (int ki = 0; ki < sh.r; ki++)
                    for (int kj = 0; kj < sh.s; kj++)
                        for (int oy = 0; oy < oh; oy++)
                            for (int ox = 0; ox < ow; ox++) {
                                int y = oy * sh.stride - sh.pad + ki, xx = ox * sh.stride - sh.pad + kj;
                                if (y < 0 || y >= sh.h || xx < 0 || xx >= sh.w) continue;
                                size_t row = ((size_t) (ni * sh.c + ci) * sh.r + ki) * sh.s + kj;
                                dref[((size_t) (ni * sh.c + ci) * sh.h + y) * sh.w + xx] += dcol[row * oh * ow + oy * ow + ox];
                            }
        launch(col2im, d1(2), d1(64), dIn.data(), (const float*) dcol.data(), sh.n, sh.c, sh.h, sh.w, sh.r, sh.s,
               sh.stride, sh.pad, oh, ow);
        check("col2im " + std::to_string(sh.r) + "x" + std::to_string(sh.s) + " s" + std::to_string(sh.stride), dIn, dref);
    }
}

static void embedding_loss_adam() {
    Vec t = {0.f, 1.f, 37.f, 999.f};
    for (int dim : {32, 33}) {
        int n = (int) t.size(), half = dim / 2;
        Vec out(n * dim, NAN);
        launch(timestep_embedding, d1(2), d1(32), out.data(), n, dim, 1, 1.0f, (float) -std::log(10000.0),
               t[0], t[1], t[2], t[3]);
        std::vector<double> ref(n * dim, 0.0);
        for (int s = 0; s < n; s++)
            for (int i = 0; i < half; i++) {
                double freq = std::exp(-std::log(10000.0) * i / (half - 1.0)), arg = t[s] * freq;
                ref[s * dim + i] = std::cos(arg);          // flipped: cos first
                ref[s * dim + half + i] = std::sin(arg);
            }
        check("timestep_embedding dim " + std::to_string(dim), out, ref, 1e-4);
        Vec fromDevice(n * dim, NAN);
        launch(timestep_embedding_from_device, d1(2), d1(32), fromDevice.data(), (const float*) t.data(), n, dim, 1,
               1.0f, (float) -std::log(10000.0));
        check("timestep_embedding_from_device dim " + std::to_string(dim), fromDevice, ref, 1e-4);
        check("timestep_embedding_from_device = timestep_embedding, dim " + std::to_string(dim), fromDevice, to_double(out), 0);
    }

    long long n = 777;
    Vec p = random_vec(n), q = random_vec(n);
    std::vector<double> partial(8, NAN);
    Vec loss(1, NAN);
    launch(mse_partial, d1(8), d1(64), partial.data(), (const float*) p.data(), (const float*) q.data(), n);
    launch(mse_finish, d1(1), d1(64), loss.data(), (const double*) partial.data(), 8, n);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += ((double) p[i] - q[i]) * ((double) p[i] - q[i]);
    check("mse_partial + mse_finish", loss, {sum / n});

    Vec param = random_vec(n), grad = random_vec(n, -1e-3f, 1e-3f), m = random_vec(n, -1e-3f, 1e-3f),
        v = random_vec(n, 0, 1e-6f);
    std::vector<double> pref(n);
    double b1 = 0.9, b2 = 0.999, lr = 1e-3, eps = 1e-8, wd = 0.01;
    int step = 2;
    for (int i = 0; i < n; i++) {
        double g = grad[i] + wd * param[i];
        double mi = b1 * m[i] + (1 - b1) * g, vi = b2 * v[i] + (1 - b2) * g * g;
        double denom = std::sqrt(vi) / std::sqrt(1 - std::pow(b2, step)) + eps;
        pref[i] = param[i] - lr / (1 - std::pow(b1, step)) * mi / denom;
    }
    launch(adam_step, d1(3), d1(64), param.data(), (const float*) grad.data(), m.data(), v.data(), n, (float) b1,
           (float) (1 - b1), (float) b2, (float) (1 - b2), (float) eps, (float) wd,
           (float) (-lr / (1 - std::pow(b1, step))), (float) std::sqrt(1 - std::pow(b2, step)));
    check("adam_step", param, pref);
}

// flash attention against a double-precision softmax(scale q kᵀ) v per head, and its three gradients, for the
// head dims of sd 1.x/2.x and the tiny models; sizes that no tile divides
static void flash_attention() {
    struct Case { int b, heads, lq, lk, d; bool causal; };
    for (Case cs : {Case{2, 2, 37, 45, 4, false}, Case{1, 3, 40, 33, 16, false}, Case{1, 2, 45, 45, 8, true},
                    Case{1, 2, 70, 77, 40, false}, Case{1, 1, 33, 65, 64, false}, Case{1, 1, 41, 40, 80, false},
                    Case{1, 1, 36, 35, 160, false}}) {
        int b = cs.b, h = cs.heads, lq = cs.lq, lk = cs.lk, d = cs.d, ld = h * d;
        float scale = (float) (1 / std::sqrt((double) d));
        Vec q = random_vec((size_t) b * lq * ld, -2, 2), k = random_vec((size_t) b * lk * ld, -2, 2);
        Vec v = random_vec((size_t) b * lk * ld), dy = random_vec((size_t) b * lq * ld);
        std::vector<double> o((size_t) b * lq * ld), dq(q.size()), dk(k.size()), dv(v.size());
        for (int s = 0; s < b; s++)
            for (int hh = 0; hh < h; hh++)
                for (int i = 0; i < lq; i++) {
                    auto at = [&](const Vec& x, int len, int row, int e) { return (double) x[((size_t) s * len + row) * ld + hh * d + e]; };
                    std::vector<double> p(lk, 0.0), dp(lk, 0.0);
                    double mx = -INFINITY, sum = 0, rowDot = 0;
                    int valid = cs.causal ? std::min(lk, i + 1) : lk;
                    for (int j = 0; j < valid; j++) {
                        double dot = 0;
                        for (int e = 0; e < d; e++) dot += at(q, lq, i, e) * at(k, lk, j, e);
                        p[j] = scale * dot;
                        mx = std::max(mx, p[j]);
                    }
                    for (int j = 0; j < valid; j++) sum += p[j] = std::exp(p[j] - mx);
                    for (int j = 0; j < valid; j++) {
                        p[j] /= sum;
                        for (int e = 0; e < d; e++) dp[j] += at(dy, lq, i, e) * at(v, lk, j, e);
                        rowDot += p[j] * dp[j];
                    }
                    for (int j = 0; j < valid; j++) {
                        double ds = p[j] * (dp[j] - rowDot);
                        for (int e = 0; e < d; e++) {
                            size_t qi = ((size_t) s * lq + i) * ld + hh * d + e, kj = ((size_t) s * lk + j) * ld + hh * d + e;
                            o[qi] += p[j] * v[kj];
                            dv[kj] += p[j] * dy[qi];
                            dq[qi] += scale * ds * k[kj];
                            dk[kj] += scale * ds * q[qi];
                        }
                    }
                }
        std::string name = "flash_attention d" + std::to_string(d) + " " + std::to_string(lq) + "x" + std::to_string(lk)
                           + (cs.causal ? " causal" : "");
        Vec out(o.size(), NAN), lse((size_t) b * h * lq, NAN), delta(lse.size(), NAN);
        dim3 qGrid{(unsigned) ((lq + FA_BLOCK_ROWS - 1) / FA_BLOCK_ROWS), (unsigned) (b * h), 1};
        dim3 kGrid{(unsigned) ((lk + FA_BLOCK_ROWS - 1) / FA_BLOCK_ROWS), (unsigned) (b * h), 1};
        dim3 block{FA_WARPS * WARP_SIZE, 1, 1};
        launch(flash_attention_forward, qGrid, block, out.data(), lse.data(), (const float*) q.data(),
               (const float*) k.data(), (const float*) v.data(), h, lq, lk, d, scale, (int) cs.causal);
        check(name + " out", out, o);
        if (cs.causal) continue;                 // the backward is non-causal (clip's text encoder is not trained)
        Vec gq(q.size(), 0.0f), gk(k.size(), 0.0f), gv(v.size(), 0.0f);
        launch(flash_attention_backward_query, qGrid, block, gq.data(), delta.data(), (const float*) dy.data(),
               (const float*) q.data(), (const float*) k.data(), (const float*) v.data(), (const float*) lse.data(),
               h, lq, lk, d, scale, 1);
        launch(flash_attention_backward_key, kGrid, block, gk.data(), gv.data(), (const float*) dy.data(),
               (const float*) q.data(), (const float*) k.data(), (const float*) v.data(), (const float*) lse.data(),
               (const float*) delta.data(), h, lq, lk, d, scale, 1, 1);
        check(name + " dq", gq, dq);
        check(name + " dk", gk, dk);
        check(name + " dv", gv, dv);
    }
}

// float32 -> bf16 by its definition, independent of the kernel's carry trick: of the two bf16 values around x
// (x's bits truncated, and the next one away from zero) the nearer, ties to the even one; past the largest bf16
// the next one up is 2^128 (infinity). nan: any nan.
static uint16_t reference_bf16(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    if (std::isnan(x)) return 0x7fc0;
    uint32_t lo = bits & 0xffff0000u, hi = lo + 0x10000u;
    if (std::isinf(x)) return (uint16_t) (bits >> 16);
    auto value = [](uint32_t b) {
        if ((b & 0x7fffffffu) == 0x7f800000u) return std::ldexp((b >> 31) ? -1.0 : 1.0, 128);
        float f;
        std::memcpy(&f, &b, 4);
        return (double) f;
    };
    double below = std::fabs(x - value(lo)), above = std::fabs(value(hi) - x);
    if (below < above) return (uint16_t) (lo >> 16);
    if (above < below) return (uint16_t) (hi >> 16);
    return (uint16_t) ((lo >> 16) & 1 ? hi >> 16 : lo >> 16);
}

static void pass_fail(const std::string& name, long long wrong, long long n) {
    if (wrong) failures++;
    std::printf("%-34s %s  %lld of %lld differ\n", name.c_str(), wrong ? "FAIL" : "pass", wrong, n);
}

// the casts, bit for bit: float32 -> bf16 over random bit patterns (every exponent, nan and infinity included) and
// the edge cases of rounding (ties both ways, just off a tie, overflow to infinity, subnormals, signed zeros);
// bf16 -> float32 over all 65536 patterns; im2col_bf16 = round(im2col)
static void bf16_casts() {
    std::vector<uint32_t> patterns = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                      0x7f800001u, 0x00000001u, 0x807fffffu, 0x00008000u, 0x00018000u, 0x3f808000u,
                                      0x3f818000u, 0x3f808001u, 0x3f807fffu, 0xbf818000u, 0x7f7fffffu, 0x7f7f8000u,
                                      0x7f7effffu, 0x7f7e8000u, 0xff7f8000u, 0x0080ffffu, 0x007fffffu};
    std::uniform_int_distribution<uint32_t> any;
    while (patterns.size() < (1u << 20)) patterns.push_back(any(rng));
    long long n = (long long) patterns.size();
    Vec x(n);
    for (long long i = 0; i < n; i++) std::memcpy(&x[i], &patterns[i], 4);
    std::vector<bf16_bits> b(n, 0xdead);
    launch(cast_to_bf16, d1(7), d1(256), b.data(), (const float*) x.data(), n);
    long long wrong = 0;
    for (long long i = 0; i < n; i++) {
        uint16_t want = reference_bf16(x[i]);
        bool bothNan = std::isnan(x[i]) && (b[i] & 0x7f80u) == 0x7f80u && (b[i] & 0x7fu) != 0;
        if (b[i] != want && !bothNan) wrong++;
    }
    pass_fail("cast_to_bf16 (bit-exact RNE)", wrong, n);

    std::vector<bf16_bits> every(65536);
    for (int i = 0; i < 65536; i++) every[i] = (bf16_bits) i;
    Vec widened(65536, NAN);
    launch(cast_from_bf16, d1(5), d1(256), widened.data(), (const bf16_bits*) every.data(), (i64) 65536);
    wrong = 0;
    for (int i = 0; i < 65536; i++) {
        uint32_t bits;
        std::memcpy(&bits, &widened[i], 4);
        if (bits != (uint32_t) i << 16) wrong++;
    }
    pass_fail("cast_from_bf16 (exact)", wrong, 65536);

    int c = 3, h = 7, w = 9, r = 3, s = 3, stride = 2, pad = 1, batch = 2;
    int oh = (h + 2 * pad - r) / stride + 1, ow = (w + 2 * pad - s) / stride + 1;
    size_t colSize = (size_t) batch * c * r * s * oh * ow;
    Vec in = random_vec((size_t) batch * c * h * w, -3, 3), col(colSize, NAN);
    std::vector<bf16_bits> colBf16(colSize, 0xdead);
    launch(im2col, d1(3), d1(64), col.data(), (const float*) in.data(), batch, c, h, w, r, s, stride, pad, oh, ow);
    launch(im2col_bf16, d1(3), d1(64), colBf16.data(), (const float*) in.data(), batch, c, h, w, r, s, stride, pad, oh, ow);
    wrong = 0;
    for (size_t i = 0; i < colSize; i++) wrong += colBf16[i] != reference_bf16(col[i]);
    pass_fail("im2col_bf16 3x3 s2 (= bf16(im2col))", wrong, (long long) colSize);
}

int main() {
    arithmetic_and_activations();
    group_norm();
    layer_norm();
    softmax();
    layout();
    bias();
    residual();
    im2col_col2im();
    embedding_loss_adam();
    flash_attention();
    bf16_casts();
    std::printf("%s: %d failed\n", failures ? "FAILED" : "all passed", failures);
    return failures ? 1 : 0;
}
