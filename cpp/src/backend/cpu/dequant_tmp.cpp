// TEMPORARY until the dequant branches merge: F32 only.
#include "backend/cpu/dequant.h"
#include <cstring>
#include "fastspec/status.h"
namespace fastspec::cpu {
void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  if (t != DType::F32) throw FormatError(std::string("cannot dequantize ") + dtype_name(t));
  std::memcpy(dst, src, n * 4);
}
void dequantize_awq(const int32_t*, const int32_t*, const uint16_t*, int64_t, int64_t, int64_t, float*) {
  throw FormatError("awq not yet");
}
}
