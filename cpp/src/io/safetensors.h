// Hugging Face safetensors checkpoints -> ModelFile: a single .safetensors file, a sharded
// model.safetensors.index.json, or a directory holding either (plus config.json beside it).
#pragma once
#include <string>

#include "fastspec/model_file.h"
#include "io/limits.h"

namespace fastspec {

// safetensors_header_max, json_file_bytes_max: io/limits.h.

// Maps the file(s), fills mf.tensors_ (sorted by file, then offset), mf.maps_, mf.metadata_
// (config.json top-level entries, then "safetensors.<key>" from each header's __metadata__),
// mf.config_ (from config.json when present) and mf.format_ = "safetensors". With an AutoAWQ
// GEMM quantization_config, adds a virtual AWQ_INT4 "<prefix>.weight" [out, in] per qweight.
// Throws FormatError (bad bytes: names the file, tensor and sizes) or IoError (unreadable).
void safetensors_load(ModelFile& mf, const std::string& path);

}  // namespace fastspec
