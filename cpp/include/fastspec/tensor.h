// Element types (numbered as ggml numbers them, so GGUF type ids map 1:1) and tensor descriptors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fastspec {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
  // Not ggml types: formats found in safetensors checkpoints.
  U8 = 1000, BOOL = 1001,
  AWQ_INT4 = 1100,  // AutoAWQ "GEMM" packed int4 linear weight (virtual: qweight+qzeros+scales)
};

struct DTypeTraits {
  const char* name;     // "Q4_K"
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t block_bytes;  // bytes per block
  bool dequantizable;   // fastspec can turn it into f32
};

// Traits of a type; nullptr for an id fastspec does not know (e.g. a future ggml type).
const DTypeTraits* dtype_traits(DType t);
const DTypeTraits* dtype_traits_from_ggml_id(uint32_t id);
const char* dtype_name(DType t);

// One stored tensor, as the file describes it. Data is a view into the mapped file.
struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (numpy order; GGUF ne[] reversed)
  uint64_t offset = 0;         // byte offset of data from the start of the file
  uint64_t nbytes = 0;         // stored bytes
  const uint8_t* data = nullptr;  // [nbytes] in the mapping

  // AWQ_INT4 only: indices (into the owning file's tensor list) of the packed parts.
  struct Awq {
    int32_t qweight = -1;  // int32 [in, out/8]
    int32_t qzeros = -1;   // int32 [in/group, out/8]
    int32_t scales = -1;   // f16   [in/group, out]
    int32_t group_size = 0;
    int32_t bits = 0;
  } awq;

  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace fastspec
