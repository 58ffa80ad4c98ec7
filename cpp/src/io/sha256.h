// SHA-256 (FIPS 180-4): the identity that ties a draft head to the target it was distilled from.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace fastspec {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex_digest();  // lowercase hex of the 32-byte digest; the object is spent after it

 private:
  void block(const uint8_t* p);  // one 64-byte block into state_
  uint32_t state_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed
};

// Hex SHA-256 of a whole file (read in chunks); IoError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace fastspec
