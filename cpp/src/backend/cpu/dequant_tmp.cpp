// TEMPORARY until the safetensors/AWQ branch merges.
#include "backend/cpu/dequant.h"
#include "fastspec/status.h"
namespace fastspec::cpu {
void dequantize_awq(const int32_t*, const int32_t*, const uint16_t*, int64_t, int64_t, int64_t, float*) {
  throw FormatError("awq not yet");
}
}
