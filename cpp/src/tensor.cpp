// dtype traits table.
#include "fastspec/tensor.h"

namespace fastspec {
namespace {

struct Entry {
  DType type;
  DTypeTraits traits;
};

constexpr Entry kTable[] = {
    {DType::F32, {"F32", 1, 4, true}},
    {DType::F16, {"F16", 1, 2, true}},
    {DType::BF16, {"BF16", 1, 2, true}},
    {DType::F64, {"F64", 1, 8, true}},
    {DType::Q4_0, {"Q4_0", 32, 18, true}},
    {DType::Q4_1, {"Q4_1", 32, 20, true}},
    {DType::Q5_0, {"Q5_0", 32, 22, true}},
    {DType::Q5_1, {"Q5_1", 32, 24, true}},
    {DType::Q8_0, {"Q8_0", 32, 34, true}},
    {DType::Q8_1, {"Q8_1", 32, 36, false}},
    {DType::Q2_K, {"Q2_K", 256, 84, false}},
    {DType::Q3_K, {"Q3_K", 256, 110, false}},
    {DType::Q4_K, {"Q4_K", 256, 144, true}},
    {DType::Q5_K, {"Q5_K", 256, 176, true}},
    {DType::Q6_K, {"Q6_K", 256, 210, true}},
    {DType::Q8_K, {"Q8_K", 256, 292, false}},
    {DType::I8, {"I8", 1, 1, true}},
    {DType::I16, {"I16", 1, 2, true}},
    {DType::I32, {"I32", 1, 4, true}},
    {DType::I64, {"I64", 1, 8, true}},
    {DType::U8, {"U8", 1, 1, true}},
    {DType::BOOL, {"BOOL", 1, 1, true}},
    {DType::AWQ_INT4, {"AWQ_INT4", 1, 0, true}},
};

}  // namespace

const DTypeTraits* dtype_traits(DType t) {
  for (const Entry& e : kTable)
    if (e.type == t) return &e.traits;
  return nullptr;
}

const DTypeTraits* dtype_traits_from_ggml_id(uint32_t id) {
  if (id >= 1000) return nullptr;  // our own non-ggml ids never appear in a GGUF file
  return dtype_traits(static_cast<DType>(id));
}

const char* dtype_name(DType t) {
  const DTypeTraits* tr = dtype_traits(t);
  return tr ? tr->name : "unknown";
}

}  // namespace fastspec
