// The C++ tests' one way to run a session to its end alone: every token it commits.
#pragma once
#include <cstdint>
#include <vector>

#include "fastspec/engine.h"

namespace fastspec_test {

inline std::vector<int32_t> generate(fastspec::Engine& e, const std::vector<int32_t>& prompt,
                                     const fastspec::SamplingOptions& s) {
  auto session = e.start(prompt, s, {});
  std::vector<int32_t> out;
  while (!session->finished())
    for (int32_t t : session->step()) out.push_back(t);
  return out;
}

}  // namespace fastspec_test
