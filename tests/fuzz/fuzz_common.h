// Shared by the libFuzzer harnesses: a private scratch folder (tmpfs when there is one) for the
// files a harness writes, and the exercise every loaded ModelFile gets (what fastspec.inspect and
// the engine read: metadata values, config, tensors, small tensors dequantized).
// Contract of every harness: an input either loads or throws fastspec::FormatError / ModelError.
// Any other exception escapes LLVMFuzzerTestOneInput and libFuzzer reports it as a crash; so are
// sanitizer reports, and inputs slower than -timeout.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fastspec/model_file.h"
#include "fastspec/status.h"

namespace fuzz {

namespace fs = std::filesystem;

// A per-process folder under $FASTSPEC_FUZZ_SCRATCH (test_fuzz_campaign.py passes its tmp_path), else
// under /dev/shm or the temp folder; removed at a normal exit (libFuzzer's own exits skip atexit,
// hence the variable).
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    const char* env = std::getenv("FASTSPEC_FUZZ_SCRATCH");
    fs::path base = env && *env ? fs::path(env)
                    : fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("fastspec-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] { std::error_code ec; fs::remove_all(scratch_dir(), ec); });
    return d;
  }();
  return dir;
}

inline void write_file(const fs::path& p, const uint8_t* data, size_t n) {
  FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}

// Reads what a caller of ModelFile would: every metadata value (array elements one by one, at
// most 4096 per array), the config, every tensor's fields, and dequantizes tensors of up to 64k
// elements (as fastspec.inspect(...).tensor() does).
inline void exercise(const fastspec::ModelFile& mf) {
  volatile uint64_t sink = 0;
  for (const auto& kv : mf.metadata()) {
    const fastspec::MetaValue& v = kv.second;
    sink += kv.first.size() + v.s.size();
    const size_t n = v.array_size();
    for (size_t k = 0; k < n && k < 4096; ++k) sink += v.array_at(k).s.size();
  }
  const fastspec::ModelConfig& c = mf.config();
  sink += static_cast<uint64_t>(c.n_layers + c.n_embd + c.vocab_size) + c.architecture.size();
  std::vector<float> out;
  for (const fastspec::TensorInfo& t : mf.tensors()) {
    sink += t.nbytes + t.offset + t.shape.size();
    const int64_t n = t.n_elements();
    const fastspec::DTypeTraits* tr = fastspec::dtype_traits(t.type);
    const bool can = t.type == fastspec::DType::AWQ_INT4 || (tr && tr->dequantizable);
    if (!can || n <= 0 || n > 65536) continue;
    out.assign(static_cast<size_t>(n), 0.0f);
    mf.dequantize(t, out.data());
    sink += static_cast<uint64_t>(out[0] == out[0]);
  }
  (void)sink;
}

// Runs fn(); FormatError / ModelError are the expected refusals.
template <typename Fn>
int expect_loads_or_refuses(Fn&& fn) {
  try {
    fn();
  } catch (const fastspec::FormatError&) {
  } catch (const fastspec::ModelError&) {
  }
  return 0;
}

}  // namespace fuzz
