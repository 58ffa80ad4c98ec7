// AutoAWQ settings from config.json's quantization_config, and why a checkpoint's packed weights
// cannot run when they cannot. Used by the safetensors loader (which adds virtual AWQ_INT4 weights
// only for a supported config) and by the transformer (whose error for a packed weight it cannot
// bind names the tensor, its shape, the setting and what is supported).
#pragma once
#include <cstdint>
#include <string>

#include "fastspec/metadata.h"

namespace fastspec {

struct AwqConfig {
  bool enabled = false;      // AutoAWQ GEMM, 4 bits, zero point: the loader adds AWQ_INT4 weights
  int64_t bits = 0;
  int64_t group_size = 0;    // -1: one group spanning all inputs
  // Empty when enabled; otherwise why packed weights cannot run ("config.json has no
  // quantization_config", "quantization_config.bits is 8", ...).
  std::string unsupported;
};

// What fastspec runs, for messages.
extern const char* const kAwqSupported;

// quantization_config: the config.json entry (nullptr when absent). Missing bits/group_size and
// settings other than AutoAWQ GEMM 4-bit with zero points leave enabled false with a reason;
// a field of the wrong JSON type, or a group_size of 0 or below -1, throws FormatError
// naming config_path and the field.
AwqConfig awq_config(const MetaValue* quantization_config, const std::string& config_path);

}  // namespace fastspec
