// An opened model file (GGUF, or a safetensors checkpoint directory): memory-mapped tensors,
// metadata and the ModelConfig derived from it. Opening never copies tensor data.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fastspec/metadata.h"
#include "fastspec/model_config.h"
#include "fastspec/tensor.h"

namespace fastspec {

class MappedFile;

class ModelFile {
 public:
  // Opens a .gguf file, a .safetensors file, a model.safetensors.index.json, or a directory that
  // holds a Hugging Face checkpoint. Throws IoError / FormatError naming the file and the problem.
  static std::unique_ptr<ModelFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& format() const { return format_; }  // "gguf" | "safetensors"
  const MetaMap& metadata() const { return metadata_; }
  const ModelConfig& config() const { return config_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  uint64_t mapped_bytes() const;

  const TensorInfo* find(const std::string& name) const;      // nullptr when absent
  const TensorInfo& get(const std::string& name) const;       // ModelError naming file + tensor
  // Dequantizes (or converts) the whole tensor to f32. out: [t.n_elements()].
  void dequantize(const TensorInfo& t, float* out) const;

  // Loader-facing construction (io/ fills these).
  std::string path_;
  std::string format_;
  MetaMap metadata_;
  ModelConfig config_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;   // name -> position in tensors_
  std::vector<std::shared_ptr<MappedFile>> maps_;   // keep the mappings alive
  void add_tensor(TensorInfo t);                    // FormatError on a duplicate name
};

}  // namespace fastspec
