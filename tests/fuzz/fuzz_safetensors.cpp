// libFuzzer harness: the safetensors reader (safetensors.cpp: header JSON, index JSON, shards,
// config.json beside them, AWQ tensors) through ModelFile::open(directory), the engine's entry
// point for a checkpoint folder.
//
// Input framing: sections separated by "\n=FSFZ=\n" (tests/fuzz/safetensors.dict has it):
//   [0] config.json (empty: no config.json)   [1] model.safetensors.index.json (empty: no index)
//   [2..] with an index: s0.safetensors, s1.safetensors, ...; without: [2] is model.safetensors
// The seeds (tests/fuzz/make_seeds.py) name s0/s1.safetensors in their weight_map.
#include <cstring>

#include "fuzz_common.h"

namespace {

constexpr const char kSep[] = "\n=FSFZ=\n";
constexpr size_t kSepLen = sizeof(kSep) - 1;
constexpr size_t kMaxShards = 4;

std::vector<std::pair<const uint8_t*, size_t>> split(const uint8_t* data, size_t size) {
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  size_t start = 0;
  for (size_t i = 0; i + kSepLen <= size;) {
    if (std::memcmp(data + i, kSep, kSepLen) == 0) {
      parts.emplace_back(data + start, i - start);
      i += kSepLen;
      start = i;
    } else {
      ++i;
    }
  }
  parts.emplace_back(data + start, size - start);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fuzz::fs::path dir = fuzz::scratch_dir() / "ckpt";
  std::error_code ec;
  fuzz::fs::remove_all(dir, ec);
  fuzz::fs::create_directories(dir);
  auto parts = split(data, size);
  parts.resize(std::max<size_t>(parts.size(), 3));
  if (parts[0].second) fuzz::write_file(dir / "config.json", parts[0].first, parts[0].second);
  const bool indexed = parts[1].second > 0;
  if (indexed) fuzz::write_file(dir / "model.safetensors.index.json", parts[1].first, parts[1].second);
  for (size_t k = 2; k < parts.size() && k - 2 < kMaxShards; ++k) {
    const std::string name = indexed ? "s" + std::to_string(k - 2) + ".safetensors" : "model.safetensors";
    if (parts[k].first || !indexed) fuzz::write_file(dir / name, parts[k].first, parts[k].second);
    if (!indexed) break;
  }
  return fuzz::expect_loads_or_refuses([&] { fuzz::exercise(*fastspec::ModelFile::open(dir.string())); });
}
