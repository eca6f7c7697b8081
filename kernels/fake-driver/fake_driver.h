// what the fake libcuda.so.1 offers besides the driver api: the fake libcublas.so.13 checks its arguments against
// the driver's state through these, and the java side (bench --check-only, the tests) reads the counters.
#pragma once

extern "C" {
// 1 when the calling thread has the device's primary context current
int esdfake_context_current(void);
// 1 for a stream cuStreamCreate made and cuStreamDestroy has not destroyed (0, the legacy stream, counts too)
int esdfake_stream_valid(void* stream);
// 1 when [address, address + bytes) lies inside one live allocation
int esdfake_device_range(unsigned long long address, unsigned long long bytes);
// count only: launches, gemms and copies are checked and counted, never executed (memory is not even allocated)
int esdfake_count_only(void);
void esdfake_set_count_only(int on);
// counts one cuBLAS GEMM (batched: one call) and its multiply-adds
void esdfake_count_gemm(long long multiplyAdds);
// counts a call refused with an error, and says why on stderr
void esdfake_reject(const char* what);
// the counters' names, comma-separated, in the order esdfake_counters writes them
const char* esdfake_counter_names(void);
// writes up to n counters; returns how many there are
int esdfake_counters(long long* out, int n);
// adds nanoseconds spent inside a fake call to the driver_nanos counter
void esdfake_count_nanos(long long nanos);
}

#include <chrono>

// times a call into the fake from entry to return: the fake's own share of the caller's host time (on a GPU the
// real driver and cuBLAS take their own), which bench --check-only reports apart from the backend's
struct EsdfakeCallTimer {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    EsdfakeCallTimer() = default;
    EsdfakeCallTimer(const EsdfakeCallTimer&) = delete;
    EsdfakeCallTimer& operator=(const EsdfakeCallTimer&) = delete;
    ~EsdfakeCallTimer() {
        esdfake_count_nanos(std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - start).count());
    }
};
