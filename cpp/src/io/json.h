// Strict RFC 8259 JSON -> MetaValue (config.json, safetensors headers, index files).
// Safe on hostile input: bounded nesting depth and value count, UTF-8 validated, every error a
// FormatError "<what>: malformed JSON at byte N: <reason>".
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "fastspec/metadata.h"
#include "io/limits.h"

namespace fastspec {

// Limits (json_depth_max, json_values_max): io/limits.h.

// Parses data[0..n) as one JSON text (surrounding whitespace allowed, nothing else).
// Numbers: integers that fit int64 -> Int, larger ones that fit uint64 -> UInt, anything else
// (fraction, exponent, or overflowing both) -> Float. Strings are UTF-8 (\uXXXX escapes and
// surrogate pairs decoded). Duplicate object keys are rejected. gguf_type stays -1.
MetaValue json_parse(const char* data, size_t n, const std::string& what);

// s cut to at most max_bytes on a UTF-8 character boundary ("..." appended when cut), for
// quoting file-supplied strings in error messages.
std::string json_snippet(const std::string& s, size_t max_bytes = 64);

}  // namespace fastspec
