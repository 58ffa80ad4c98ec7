// libFuzzer harness: the JSON parser (json.cpp) that reads safetensors headers, index files and
// config.json. Besides "parses or throws FormatError", it checks the parser's contract on what it
// returns: every string (keys too) is valid UTF-8, json_snippet cuts on a character boundary, and
// no object has duplicate keys. A broken invariant traps (a crash for libFuzzer).
#include <set>

#include "fuzz_common.h"
#include "io/json.h"
#include "io/utf8.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_string(const std::string& s) {
  check(fastspec::utf8_valid(s));
  check(fastspec::utf8_valid(fastspec::json_snippet(s, 7)));
}

void walk(const fastspec::MetaValue& v, int depth) {
  check(depth <= fastspec::json_depth_max + 1);
  check(v.gguf_type == -1);
  check_string(v.s);
  for (const auto& e : v.array) walk(e, depth + 1);
  std::set<std::string> keys;
  for (const auto& kv : v.object) {
    check_string(kv.first);
    check(keys.insert(kv.first).second);
    walk(kv.second, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::expect_loads_or_refuses([&] {
    fastspec::MetaValue v = fastspec::json_parse(reinterpret_cast<const char*>(data), size, "fuzz.json");
    walk(v, 0);
  });
}
