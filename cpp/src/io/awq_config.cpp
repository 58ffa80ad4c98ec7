// quantization_config -> AwqConfig. Wrong JSON types are FormatErrors (as in config_hf.cpp);
// well-formed settings fastspec cannot run leave `unsupported` set. transformers' AwqConfig defaults version "gemm" and
// zero_point true when absent; bits and group_size have no default here (a missing one is named).
#include "io/awq_config.h"

#include <algorithm>

#include "fastspec/status.h"

namespace fastspec {

const char* const kAwqSupported =
    "supported: quant_method awq, bits 4, version gemm, zero_point true, group_size dividing in_features "
    "(or -1)";

AwqConfig awq_config(const MetaValue* q, const std::string& config_path) {
  AwqConfig c;
  if (!q || q->kind == MetaValue::Kind::Null) {
    c.unsupported = "config.json has no quantization_config";
    return c;
  }
  if (q->kind != MetaValue::Kind::Object) {
    c.unsupported = "config.json's quantization_config is not an object";
    return c;
  }
  const MetaValue* method = q->get("quant_method");
  if (!method || method->kind != MetaValue::Kind::String) {
    c.unsupported = "quantization_config has no 'quant_method' string";
    return c;
  }
  if (method->s != "awq") {
    c.unsupported = "quantization_config.quant_method is '" + method->s + "'";
    return c;
  }
  auto int_field = [&](const char* key, const char* alt, int64_t& out) -> bool {
    for (const char* k : {key, alt}) {
      const MetaValue* v = q->get(k);
      if (!v || v->kind == MetaValue::Kind::Null) continue;
      if (v->kind != MetaValue::Kind::Int)
        throw FormatError(config_path + ": field 'quantization_config." + k + "' must be an integer");
      out = v->i;
      return true;
    }
    return false;
  };
  const bool has_bits = int_field("bits", "w_bit", c.bits);
  const bool has_group = int_field("group_size", "q_group_size", c.group_size);
  if (has_group && (c.group_size == 0 || c.group_size < -1))
    throw FormatError(config_path + ": field 'quantization_config.group_size' must be positive or -1, got " +
                      std::to_string(c.group_size));
  std::string version = "gemm";
  if (const MetaValue* v = q->get("version"); v && v->kind != MetaValue::Kind::Null) {
    if (v->kind != MetaValue::Kind::String)
      throw FormatError(config_path + ": field 'quantization_config.version' must be a string");
    version = v->s;
    std::transform(version.begin(), version.end(), version.begin(), ::tolower);
  }
  bool zero_point = true;
  if (const MetaValue* v = q->get("zero_point"); v && v->kind != MetaValue::Kind::Null) {
    if (v->kind != MetaValue::Kind::Bool)
      throw FormatError(config_path + ": field 'quantization_config.zero_point' must be true or false");
    zero_point = v->b;
  }
  if (!has_bits) c.unsupported = "quantization_config has no 'bits' (or 'w_bit')";
  else if (!has_group) c.unsupported = "quantization_config has no 'group_size' (or 'q_group_size')";
  else if (c.bits != 4) c.unsupported = "quantization_config.bits is " + std::to_string(c.bits);
  else if (version != "gemm") c.unsupported = "quantization_config.version is '" + version + "'";
  else if (!zero_point) c.unsupported = "quantization_config.zero_point is false";
  c.enabled = c.unsupported.empty();
  return c;
}

}  // namespace fastspec
