// ModelFile: format dispatch, tensor lookup, whole-tensor dequantization.
#include "fastspec/model_file.h"

#include <cstring>
#include <sys/stat.h>

#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_awq.h"
#include "fastspec/status.h"
#include "io/gguf.h"
#include "io/mmap.h"
#include "io/safetensors.h"

namespace fastspec {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with_gguf_magic(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {0, 0, 0, 0};
  size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace

std::unique_ptr<ModelFile> ModelFile::open(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IoError(path + ": no such file or directory");
  auto mf = std::make_unique<ModelFile>();
  mf->path_ = path;
  if (S_ISDIR(st.st_mode) || ends_with(path, ".json") || ends_with(path, ".safetensors")) {
    safetensors_load(*mf, path);
  } else if (ends_with(path, ".gguf") || starts_with_gguf_magic(path)) {
    gguf_load(*mf, path);
  } else {
    throw FormatError(path + ": unrecognized model file (expected a .gguf file, a .safetensors file, "
                             "a model.safetensors.index.json or a checkpoint directory)");
  }
  return mf;
}

uint64_t ModelFile::mapped_bytes() const {
  uint64_t n = 0;
  for (const auto& m : maps_) n += m->size();
  return n;
}

void ModelFile::add_tensor(TensorInfo t) {
  if (index_.count(t.name)) throw FormatError(path_ + ": duplicate tensor name '" + t.name + "'");
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

const TensorInfo* ModelFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& ModelFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw ModelError(path_ + ": no tensor named '" + name + "'");
  return *t;
}

void ModelFile::dequantize(const TensorInfo& t, float* out) const {
  if (t.type == DType::AWQ_INT4) {
    const TensorInfo& qw = tensors_.at(t.awq.qweight);
    const TensorInfo& qz = tensors_.at(t.awq.qzeros);
    const TensorInfo& sc = tensors_.at(t.awq.scales);
    // t.shape = [out, in]; qweight [in, out/8]
    cpu::AwqParts p;  // the parts may sit at any byte offset: the unpacker reads them with memcpy
    p.qweight = static_cast<const uint8_t*>(static_cast<const void*>(qw.data));
    p.qzeros = static_cast<const uint8_t*>(static_cast<const void*>(qz.data));
    p.scales = static_cast<const uint8_t*>(static_cast<const void*>(sc.data));
    p.in = t.shape[1], p.out = t.shape[0], p.group = t.awq.group_size;
    cpu::dequantize_awq(p, out);
    return;
  }
  const DTypeTraits* tr = dtype_traits(t.type);
  if (!tr || !tr->dequantizable)
    throw FormatError(path_ + ": tensor '" + t.name + "': cannot dequantize type " + dtype_name(t.type));
  const int64_t n = t.n_elements();
  if (n == 0) return;
  const int64_t row = t.shape.empty() ? 1 : t.shape.back();
  if (row <= 0 || n % row != 0 || row % tr->block_size != 0)
    throw FormatError(path_ + ": tensor '" + t.name + "': row length " + std::to_string(row) +
                      " does not fit type " + tr->name);
  const int64_t n_rows = n / row;
  const uint64_t row_bytes = static_cast<uint64_t>(row / tr->block_size * tr->block_bytes);
  for (int64_t r = 0; r < n_rows; ++r) {
    try {
      cpu::dequantize_row(t.type, t.data + r * row_bytes, out + r * row, row);
    } catch (const FormatError& e) {
      throw FormatError(path_ + ": tensor '" + t.name + "': " + e.what());
    }
  }
}

}  // namespace fastspec
