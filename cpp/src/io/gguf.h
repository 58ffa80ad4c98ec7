// GGUF v2/v3 reader: header, metadata (every value type, nested arrays), tensor infos, alignment.
// Every size read from the file is checked against the bytes that remain and against the limits
// of io/limits.h before anything is allocated, so a hostile file raises FormatError instead of
// crashing or allocating gigabytes.
#pragma once
#include <string>

#include "fastspec/model_file.h"

namespace fastspec {

// Fills mf (format "gguf", metadata, tensors as views into the mapping, config). FormatError on
// any malformed input; the message starts with the path.
void gguf_load(ModelFile& mf, const std::string& path);

// ModelConfig from GGUF metadata + tensor names (llama family, gemma3; unknown archs: partial).
ModelConfig config_from_gguf(const ModelFile& mf);

}  // namespace fastspec
