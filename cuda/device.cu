// Device discovery. The runtime is linked statically; with no driver installed
// cudaGetDeviceCount fails cleanly and we report 0 devices.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "cuda_backend.h"
#include "fastspec/status.h"

namespace fastspec::cuda {

int device_count() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp prop{};
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess)
    throw Error("cuda: device " + std::to_string(device) + ": " + cudaGetErrorString(err));
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace fastspec::cuda
