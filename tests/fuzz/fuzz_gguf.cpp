// libFuzzer harness: the GGUF reader (gguf.cpp, config_gguf.cpp, metadata.cpp) through
// ModelFile::open, the engine's entry point. The input is the whole file.
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = (fuzz::scratch_dir() / "input.gguf").string();
  fuzz::write_file(path, data, size);
  return fuzz::expect_loads_or_refuses([&] { fuzz::exercise(*fastspec::ModelFile::open(path)); });
}
