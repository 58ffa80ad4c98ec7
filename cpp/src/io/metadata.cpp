// MetaValue accessors: numeric conversion with kind checks, object member and MetaMap lookup.
#include "fastspec/metadata.h"

#include <cmath>
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

const MetaValue* meta_find(const MetaMap& m, const std::string& key) {
  for (const auto& kv : m)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace fastspec
