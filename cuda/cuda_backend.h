// The CUDA backend's face to the rest of fastspec: plain C++ (no CUDA headers here).
#pragma once
#include <string>

namespace fastspec::cuda {

// Usable CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"; throws fastspec::Error for a bad index.
std::string device_description(int device);

}  // namespace fastspec::cuda
