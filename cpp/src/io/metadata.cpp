// MetaValue accessors: numeric conversion with kind checks, object member and MetaMap lookup.
#include "fastspec/metadata.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "fastspec/status.h"

namespace fastspec {
namespace {

const char* kind_name(MetaValue::Kind k) {
  switch (k) {
    case MetaValue::Kind::Null: return "null";
    case MetaValue::Kind::Bool: return "bool";
    case MetaValue::Kind::Int: return "int";
    case MetaValue::Kind::UInt: return "uint";
    case MetaValue::Kind::Float: return "float";
    case MetaValue::Kind::String: return "string";
    case MetaValue::Kind::Array: return "array";
    case MetaValue::Kind::Object: return "object";
  }
  return "?";
}

}  // namespace

double MetaValue::as_double() const {
  switch (kind) {
    case Kind::Int: return static_cast<double>(i);
    case Kind::UInt: return static_cast<double>(u);
    case Kind::Float: return f;
    default: throw ModelError(std::string("expected a number, got ") + kind_name(kind));
  }
}

int64_t MetaValue::as_int() const {
  switch (kind) {
    case Kind::Int: return i;
    case Kind::UInt:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw ModelError("integer " + std::to_string(u) + " does not fit int64");
      return static_cast<int64_t>(u);
    case Kind::Float:
      // 2^63 is exactly representable; the valid range is [-2^63, 2^63).
      if (std::isfinite(f) && f == std::floor(f) && f >= -9223372036854775808.0 &&
          f < 9223372036854775808.0)
        return static_cast<int64_t>(f);
      throw ModelError("expected an integer, got non-integral float " + std::to_string(f));
    default: throw ModelError(std::string("expected an integer, got ") + kind_name(kind));
  }
}

const MetaValue* MetaValue::get(const std::string& key) const {
  if (kind != Kind::Object) return nullptr;  // as declared: "Object member or nullptr"
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

namespace {
// Bytes per element of the GGUF scalar types (0: not a fixed-size scalar).
size_t scalar_size(int32_t t) {
  static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return (t >= 0 && t < 13) ? sz[t] : 0;
}
}  // namespace

size_t MetaValue::array_size() const {
  if (kind != Kind::Array) return 0;
  if (!packed.empty()) return packed.size() / scalar_size(gguf_type);
  if (!strings.empty()) return strings.size();
  return array.size();
}

MetaValue MetaValue::array_at(size_t k) const {
  if (k >= array_size()) throw ModelError("metadata array index out of range");
  if (!strings.empty()) {
    MetaValue v;
    v.kind = Kind::String;
    v.gguf_type = 8;
    v.s = strings[k];
    return v;
  }
  if (packed.empty()) return array[k];
  MetaValue v;
  v.gguf_type = gguf_type;
  const char* p = packed.data() + k * scalar_size(gguf_type);
  auto load = [p](auto x) { std::memcpy(&x, p, sizeof(x)); return x; };
  switch (gguf_type) {
    case 0: v.kind = Kind::UInt; v.u = load(uint8_t{}); break;
    case 1: v.kind = Kind::Int; v.i = load(int8_t{}); break;
    case 2: v.kind = Kind::UInt; v.u = load(uint16_t{}); break;
    case 3: v.kind = Kind::Int; v.i = load(int16_t{}); break;
    case 4: v.kind = Kind::UInt; v.u = load(uint32_t{}); break;
    case 5: v.kind = Kind::Int; v.i = load(int32_t{}); break;
    case 6: v.kind = Kind::Float; v.f = load(float{}); break;
    case 7: v.kind = Kind::Bool; v.b = load(uint8_t{}) != 0; break;
    case 10: v.kind = Kind::UInt; v.u = load(uint64_t{}); break;
    case 11: v.kind = Kind::Int; v.i = load(int64_t{}); break;
    case 12: v.kind = Kind::Float; v.f = load(double{}); break;
    default: throw ModelError("metadata array has an unknown element type");
  }
  return v;
}

const MetaValue* meta_find(const MetaMap& m, const std::string& key) {
  for (const auto& kv : m)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace fastspec
