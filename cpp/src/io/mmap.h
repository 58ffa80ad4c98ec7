// Read-only memory mapping of a whole file. Loading a model never copies it: tensors are views.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace fastspec {

class MappedFile {
 public:
  // Maps `path` read-only; throws IoError naming the path (missing, not a regular file, ...).
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;  // [size_]
  uint64_t size_ = 0;
};

}  // namespace fastspec
