// A minimal check harness for the C++ test binaries (no framework dependency): CHECK records a
// failure with its file, line and expression and the test goes on; CHECK_THROWS expects an
// exception of a given type; main() returns failures() != 0.
#pragma once
#include <cstdio>
#include <string>

namespace fastspec_test {

inline int& failure_count() {
  static int n = 0;
  return n;
}
inline int failures() { return failure_count(); }
inline void fail(const char* file, int line, const std::string& what) {
  ++failure_count();
  std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what.c_str());
}

}  // namespace fastspec_test

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) ::fastspec_test::fail(__FILE__, __LINE__, #cond);         \
  } while (0)

#define CHECK_THROWS(stmt, ExType)                                                               \
  do {                                                                                           \
    bool thrown_ = false;                                                                        \
    try {                                                                                        \
      stmt;                                                                                      \
    } catch (const ExType&) {                                                                    \
      thrown_ = true;                                                                            \
    }                                                                                            \
    if (!thrown_) ::fastspec_test::fail(__FILE__, __LINE__, #stmt " did not throw " #ExType);   \
  } while (0)
