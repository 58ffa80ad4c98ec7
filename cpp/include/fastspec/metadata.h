// A metadata value: GGUF key/values and parsed JSON (config.json, safetensors headers) share it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fastspec {

struct MetaValue {
  // Kind of value. GGUF's integer/float widths are kept in `gguf_type` for round-tripping.
  enum class Kind { Null, Bool, Int, UInt, Float, String, Array, Object };
  Kind kind = Kind::Null;
  // GGUF value type id (0..12) when read from GGUF; -1 for JSON. For arrays: the element type.
  int32_t gguf_type = -1;

  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
  std::string s;
  // Arrays come in three compact forms, so an array's memory stays within a small multiple of
  // its bytes in the file: fixed-size scalars as their little-endian bytes in `packed` (element
  // type in gguf_type), strings in `strings`, anything else (nested arrays, JSON) in `array`.
  std::vector<MetaValue> array;
  std::vector<std::string> strings;
  std::string packed;
  std::vector<std::pair<std::string, MetaValue>> object;  // insertion order kept

  bool is_number() const { return kind == Kind::Int || kind == Kind::UInt || kind == Kind::Float; }
  double as_double() const;   // any number (throws ModelError otherwise; caller adds context)
  int64_t as_int() const;     // Int/UInt/integral Float
  const MetaValue* get(const std::string& key) const;  // Object member or nullptr
  size_t array_size() const;             // elements of an Array, whatever its form
  MetaValue array_at(size_t k) const;    // element k as a MetaValue (copies one element)
};

using MetaMap = std::vector<std::pair<std::string, MetaValue>>;  // ordered, as in the file

const MetaValue* meta_find(const MetaMap& m, const std::string& key);

}  // namespace fastspec
