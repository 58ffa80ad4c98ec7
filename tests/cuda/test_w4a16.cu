// W4A16 GEMM on the GPU (cuda/kernels/w4a16.h) against A @ dequant(Wq) on the host, Marlin-style:
// the reference uses the same dequantized weights, so quantization error stays out of the test.
//   fastspec-test-w4a16            correctness: M in {1, 2, 4, 8, 16, 17} x several (K, N, group),
//                                  relative error < 1e-3, and batch invariance (a row of M = 17
//                                  bit-equal to the same row alone); exit 1 on failure
//   fastspec-test-w4a16 --bench    also times M = 1, 2, 4, 8, 16 on 4096x4096, 4096x14336,
//                                  14336x4096 (K x N): W4A16 vs cuBLAS f16 (when built with it),
//                                  bandwidth at M = 1 vs a device-to-device copy
// Built with FASTSPEC_TESTS=ON when the CUDA backend is on; run by tests/test_cuda_w4a16.py and
// bench/gpu_w4a16.sh on a machine with a GPU.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/w4a16.h"
#ifdef FASTSPEC_HAVE_CUBLAS
#include <cublas_v2.h>
#endif

using fastspec::cuda::W4A16Args;
using fastspec::cuda::W4A16Status;

namespace {

#define CHECK_CUDA(e)                                                                     \
  do {                                                                                    \
    cudaError_t err_ = (e);                                                               \
    if (err_ != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(err_)); \
      std::exit(2);                                                                       \
    }                                                                                     \
  } while (0)

constexpr int kNib[8] = {0, 4, 1, 5, 2, 6, 3, 7};

struct Awq {
  int K, N, G;
  std::vector<int32_t> qweight, qzeros;  // [K, N/8], [K/G, N/8]
  std::vector<__half> scales;            // [K/G, N]
  std::vector<float> W;                  // [K, N] dequantized (the reference's weights)
};

Awq make_awq(int K, int N, int G, uint32_t seed) {
  std::mt19937 rng(seed);
  Awq a{K, N, G, std::vector<int32_t>(static_cast<size_t>(K) * N / 8), std::vector<int32_t>(static_cast<size_t>(K / G) * N / 8),
        std::vector<__half>(static_cast<size_t>(K / G) * N), std::vector<float>(static_cast<size_t>(K) * N)};
  std::uniform_int_distribution<int> nib(0, 15);
  std::uniform_real_distribution<float> sc(0.001f, 0.02f);
  std::vector<int> z(static_cast<size_t>(K / G) * N);
  for (size_t i = 0; i < z.size(); ++i) z[i] = nib(rng), a.scales[i] = __float2half(sc(rng));
  for (int g = 0; g < K / G; ++g)
    for (int j = 0; j < N / 8; ++j) {
      uint32_t w = 0;
      for (int c = 0; c < 8; ++c) w |= static_cast<uint32_t>(z[static_cast<size_t>(g) * N + 8 * j + c]) << (4 * kNib[c]);
      a.qzeros[static_cast<size_t>(g) * N / 8 + j] = static_cast<int32_t>(w);
    }
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < N / 8; ++j) {
      uint32_t w = 0;
      for (int c = 0; c < 8; ++c) {
        const int q = nib(rng), n = 8 * j + c, g = k / G;
        w |= static_cast<uint32_t>(q) << (4 * kNib[c]);
        a.W[static_cast<size_t>(k) * N + n] =
            static_cast<float>(q - z[static_cast<size_t>(g) * N + n]) * __half2float(a.scales[static_cast<size_t>(g) * N + n]);
      }
      a.qweight[static_cast<size_t>(k) * N / 8 + j] = static_cast<int32_t>(w);
    }
  return a;
}

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, v.size() * sizeof(T)));
  CHECK_CUDA(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

struct Dev {
  int32_t *qw, *qz;
  __half *sc, *x;
  float *y, *ws;
  int splits;
};

Dev upload_awq(const Awq& a, int max_m, int sms) {
  Dev d{};
  d.qw = upload(a.qweight), d.qz = upload(a.qzeros), d.sc = upload(a.scales);
  d.splits = fastspec::cuda::w4a16_splits(a.N, a.K, a.G, sms);
  CHECK_CUDA(cudaMalloc(&d.x, sizeof(__half) * max_m * a.K));
  CHECK_CUDA(cudaMalloc(&d.y, sizeof(float) * max_m * a.N));
  CHECK_CUDA(cudaMalloc(&d.ws, sizeof(float) * fastspec::cuda::w4a16_workspace_floats(max_m, a.N, d.splits)));
  return d;
}

void free_dev(Dev& d) {
  for (void* p : {static_cast<void*>(d.qw), static_cast<void*>(d.qz), static_cast<void*>(d.sc), static_cast<void*>(d.x),
                  static_cast<void*>(d.y), static_cast<void*>(d.ws)})
    cudaFree(p);
}

std::vector<float> run(const Awq& a, Dev& d, const std::vector<__half>& x, int M) {
  CHECK_CUDA(cudaMemcpy(d.x, x.data(), sizeof(__half) * M * a.K, cudaMemcpyHostToDevice));
  W4A16Args args;
  args.x = d.x, args.qweight = d.qw, args.qzeros = d.qz, args.scales = d.sc, args.y = d.y, args.workspace = d.ws;
  args.M = M, args.N = a.N, args.K = a.K, args.group = a.G, args.splits = d.splits;
  const W4A16Status st = fastspec::cuda::w4a16_gemm(args, nullptr);
  if (st != W4A16Status::ok) {
    std::fprintf(stderr, "w4a16_gemm(M=%d, N=%d, K=%d, group=%d): %s\n", M, a.N, a.K, a.G, fastspec::cuda::w4a16_status_name(st));
    std::exit(1);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> y(static_cast<size_t>(M) * a.N);
  CHECK_CUDA(cudaMemcpy(y.data(), d.y, sizeof(float) * y.size(), cudaMemcpyDeviceToHost));
  return y;
}

int correctness(int sms) {
  int failures = 0;
  const int shapes[][3] = {{256, 64, 32}, {512, 1024, 128}, {4096, 1032, 128}, {576, 1536, 64}, {2048, 4096, 128}};
  for (const auto& sh : shapes) {
    const int K = sh[0], N = sh[1], G = sh[2];
    const Awq a = make_awq(K, N, G, static_cast<uint32_t>(K * 31 + N));
    Dev d = upload_awq(a, 17, sms);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<__half> x(static_cast<size_t>(17) * K);
    for (auto& v : x) v = __float2half(nd(rng));
    std::vector<float> alone[17];
    for (int M : {1, 2, 4, 8, 16, 17}) {
      const std::vector<float> y = run(a, d, x, M);
      double max_err = 0, max_ref = 0;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double ref = 0;
          for (int k = 0; k < K; ++k)
            ref += static_cast<double>(__half2float(x[static_cast<size_t>(m) * K + k])) * a.W[static_cast<size_t>(k) * N + n];
          max_err = std::fmax(max_err, std::fabs(ref - y[static_cast<size_t>(m) * N + n]));
          max_ref = std::fmax(max_ref, std::fabs(ref));
        }
      const double rel = max_err / (max_ref > 0 ? max_ref : 1);
      const bool ok = rel < 1e-3;
      std::printf("K=%5d N=%5d group=%3d M=%2d splits=%d: relative error %.2e %s\n", K, N, G, M, d.splits, rel,
                  ok ? "ok" : "FAIL");
      failures += !ok;
      if (M == 1) alone[0] = y;
      if (M == 17) {  // batch invariance: row 0 of the 17-row pass == the 1-row pass
        const bool same = std::memcmp(y.data(), alone[0].data(), sizeof(float) * N) == 0;
        std::printf("  row 0 of M=17 bit-equal to M=1: %s\n", same ? "yes" : "NO");
        failures += !same;
      }
    }
    free_dev(d);
  }
  return failures;
}

void bench(int sms) {
  const int shapes[][2] = {{4096, 4096}, {4096, 14336}, {14336, 4096}};  // K x N
  cudaEvent_t e0, e1;
  CHECK_CUDA(cudaEventCreate(&e0));
  CHECK_CUDA(cudaEventCreate(&e1));
#ifdef FASTSPEC_HAVE_CUBLAS
  cublasHandle_t h;
  cublasCreate(&h);
#endif
  for (const auto& sh : shapes) {
    const int K = sh[0], N = sh[1], G = 128;
    const Awq a = make_awq(K, N, G, 1);
    Dev d = upload_awq(a, 16, sms);
    std::vector<__half> x(static_cast<size_t>(16) * K, __float2half(0.01f));
    CHECK_CUDA(cudaMemcpy(d.x, x.data(), sizeof(__half) * x.size(), cudaMemcpyHostToDevice));
    // copy bandwidth of the weight bytes (the M = 1 floor)
    const size_t wbytes = a.qweight.size() * 4 + a.qzeros.size() * 4 + a.scales.size() * 2;
    void* cp;
    CHECK_CUDA(cudaMalloc(&cp, wbytes));
    CHECK_CUDA(cudaEventRecord(e0));
    for (int i = 0; i < 20; ++i) CHECK_CUDA(cudaMemcpyAsync(cp, d.qw, a.qweight.size() * 4, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaEventRecord(e1));
    CHECK_CUDA(cudaEventSynchronize(e1));
    float ms_copy;
    CHECK_CUDA(cudaEventElapsedTime(&ms_copy, e0, e1));
    const double copy_gbs = 2.0 * a.qweight.size() * 4 * 20 / (ms_copy * 1e-3) / 1e9;  // read + write
#ifdef FASTSPEC_HAVE_CUBLAS
    __half *wf16, *yf16;
    CHECK_CUDA(cudaMalloc(&wf16, sizeof(__half) * K * N));
    CHECK_CUDA(cudaMalloc(&yf16, sizeof(__half) * 16 * N));
    CHECK_CUDA(cudaMemset(wf16, 0, sizeof(__half) * K * N));
#endif
    for (int M : {1, 2, 4, 8, 16}) {
      W4A16Args args;
      args.x = d.x, args.qweight = d.qw, args.qzeros = d.qz, args.scales = d.sc, args.y = d.y, args.workspace = d.ws;
      args.M = M, args.N = N, args.K = K, args.group = G, args.splits = d.splits;
      for (int i = 0; i < 3; ++i) fastspec::cuda::w4a16_gemm(args, nullptr);
      CHECK_CUDA(cudaEventRecord(e0));
      for (int i = 0; i < 50; ++i) fastspec::cuda::w4a16_gemm(args, nullptr);
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float ms;
      CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      const double us = ms * 1e3 / 50;
      double f16_us = 0;
#ifdef FASTSPEC_HAVE_CUBLAS
      const __half one = __float2half(1.0f), zero = __float2half(0.0f);
      auto gemm = [&] {  // y[M, N] = x[M, K] @ W[K, N] (column-major: y^T = W^T x^T)
        cublasHgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, wf16, N, d.x, K, &zero, yf16, N);
      };
      for (int i = 0; i < 3; ++i) gemm();
      CHECK_CUDA(cudaEventRecord(e0));
      for (int i = 0; i < 50; ++i) gemm();
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      f16_us = ms * 1e3 / 50;
#endif
      std::printf("K=%5d N=%5d M=%2d: w4a16 %8.1f us (%6.1f GB/s of weights; copy %6.1f GB/s)", K, N, M, us,
                  wbytes / (us * 1e-6) / 1e9, copy_gbs);
      if (f16_us > 0) std::printf("  cuBLAS f16 %8.1f us  speed-up %.2fx", f16_us, f16_us / us);
      std::printf("\n");
    }
#ifdef FASTSPEC_HAVE_CUBLAS
    cudaFree(wf16);
    cudaFree(yf16);
#endif
    cudaFree(cp);
    free_dev(d);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("no CUDA device\n");
    return 77;  // skipped
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  const int failures = correctness(prop.multiProcessorCount);
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) bench(prop.multiProcessorCount);
  std::printf("%s\n", failures ? "FAILED" : "all correct");
  return failures ? 1 : 0;
}
