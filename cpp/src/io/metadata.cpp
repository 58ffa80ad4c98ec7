// MetaValue accessors.
#include "fastspec/metadata.h"

#include <cmath>

#include "fastspec/status.h"

namespace fastspec {

double MetaValue::as_double() const {
  switch (kind) {
    case Kind::Int: return static_cast<double>(i);
    case Kind::UInt: return static_cast<double>(u);
    case Kind::Float: return f;
    default: throw ModelError("metadata value is not a number");
  }
}

int64_t MetaValue::as_int() const {
  switch (kind) {
    case Kind::Int: return i;
    case Kind::UInt:
      if (u > static_cast<uint64_t>(INT64_MAX)) throw ModelError("metadata integer too large");
      return static_cast<int64_t>(u);
    case Kind::Float:
      if (std::floor(f) != f || std::fabs(f) > 9.2e18) throw ModelError("metadata value is not an integer");
      return static_cast<int64_t>(f);
    default: throw ModelError("metadata value is not an integer");
  }
}

const MetaValue* MetaValue::get(const std::string& key) const {
  if (kind != Kind::Object) return nullptr;
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
