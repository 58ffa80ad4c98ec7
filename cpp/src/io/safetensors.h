// safetensors checkpoints (single file, sharded index, or directory) with config.json.
#pragma once
#include <string>

#include "fastspec/model_file.h"

namespace fastspec {

void safetensors_load(ModelFile& mf, const std::string& path);

}  // namespace fastspec
