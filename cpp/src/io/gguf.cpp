// GGUF reader. Layout (little-endian):
//   "GGUF" u32 version u64 n_tensors u64 n_kv | kv[n_kv] | tensor_info[n_tensors] | pad | data
//   kv = string key, u32 type, value;  string = u64 len, bytes;  array = u32 type, u64 n, values
//   tensor_info = string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 type, u64 offset
//   data starts at the first multiple of general.alignment (default 32) after the infos.
// Limits (io/limits.h): counts, lengths and the memory the metadata and the tensor table may take
// are checked before each allocation (Budget), so a hostile file is refused without allocating.
#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "fastspec/status.h"
#include "io/limits.h"
#include "io/mmap.h"
#include "io/utf8.h"

namespace fastspec {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS

enum GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12, kTypeCount = 13,
};

// Smallest encoded size of one value of each type (arrays: u32 type + u64 count).
uint64_t min_value_size(uint32_t t) {
  static const uint64_t sz[kTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
  return sz[t];
}

// Bounds-checked little-endian cursor over the mapped header.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* p, uint64_t n) : path_(path), p_(p), n_(n) {}

  uint64_t pos() const { return pos_; }
  const uint8_t* here() const { return p_ + pos_; }
  void skip(uint64_t bytes) { need(bytes, "skip"); pos_ += bytes; }
  uint64_t remaining() const { return n_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(path_ + ": " + what + " (at byte " + std::to_string(pos_) + " of " +
                      std::to_string(n_) + ")");
  }
  void need(uint64_t bytes, const char* what) const {
    if (bytes > remaining())
      fail(std::string("truncated file: ") + what + " needs " + std::to_string(bytes) +
           " bytes, " + std::to_string(remaining()) + " remain");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // The length of a string about to be read (not consumed): for charging before the copy.
  uint64_t string_len(const std::string& what) const {
    need(8, what.c_str());
    uint64_t len;
    std::memcpy(&len, p_ + pos_, 8);
    if (len > remaining() - 8)
      fail(what + ": string length " + std::to_string(len) + " runs past the end of the file");
    if (len > gguf_string_bytes_max)
      fail(what + ": string length " + std::to_string(len) + " exceeds the limit of " +
           std::to_string(gguf_string_bytes_max) + " bytes");
    return len;
  }
  std::string read_string(const std::string& what) {
    uint64_t len = string_len(what);
    pos_ += 8;
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* p_;
  uint64_t n_;
  uint64_t pos_ = 0;
};

// The memory one part of the parsed file (metadata, tensor table) may take: charge() before each
// allocation; past the limit -> FormatError naming the file, the field and the sizes.
class Budget {
 public:
  Budget(const Reader& r, const char* part, uint64_t limit) : r_(r), part_(part), limit_(limit) {}
  void charge(uint64_t bytes, const std::string& what) {
    if (bytes > limit_ - used_)
      r_.fail(what + " would take the " + part_ + " past its memory budget (" + std::to_string(bytes) +
              " more bytes with " + std::to_string(used_) + " of " + std::to_string(limit_) + " used)");
    used_ += bytes;
  }
  // A count of objects of `size` bytes each (overflow-safe).
  void charge_n(uint64_t n, uint64_t size, const std::string& what) {
    uint64_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) bytes = ~uint64_t(0);
    charge(bytes, what);
  }
  // Heap bytes of a std::string of `len` chars beyond the object itself (short strings: none).
  static uint64_t string_heap(uint64_t len) { return len < 16 ? 0 : len + 1; }

 private:
  const Reader& r_;
  const char* part_;
  uint64_t limit_;
  uint64_t used_ = 0;
};

std::string read_charged_string(Reader& r, Budget& b, const std::string& what) {
  b.charge(Budget::string_heap(r.string_len(what)), what);
  return r.read_string(what);
}

MetaValue read_value(Reader& r, Budget& b, uint32_t type, const std::string& key, int depth) {
  MetaValue v;
  v.gguf_type = static_cast<int32_t>(type);
  const std::string where = "metadata '" + key + "'";
  switch (type) {
    case kU8: v.kind = MetaValue::Kind::UInt; v.u = r.read<uint8_t>(key.c_str()); break;
    case kU16: v.kind = MetaValue::Kind::UInt; v.u = r.read<uint16_t>(key.c_str()); break;
    case kU32: v.kind = MetaValue::Kind::UInt; v.u = r.read<uint32_t>(key.c_str()); break;
    case kU64: v.kind = MetaValue::Kind::UInt; v.u = r.read<uint64_t>(key.c_str()); break;
    case kI8: v.kind = MetaValue::Kind::Int; v.i = r.read<int8_t>(key.c_str()); break;
    case kI16: v.kind = MetaValue::Kind::Int; v.i = r.read<int16_t>(key.c_str()); break;
    case kI32: v.kind = MetaValue::Kind::Int; v.i = r.read<int32_t>(key.c_str()); break;
    case kI64: v.kind = MetaValue::Kind::Int; v.i = r.read<int64_t>(key.c_str()); break;
    case kF32: v.kind = MetaValue::Kind::Float; v.f = r.read<float>(key.c_str()); break;
    case kF64: v.kind = MetaValue::Kind::Float; v.f = r.read<double>(key.c_str()); break;
    case kBool: {
      uint8_t bv = r.read<uint8_t>(key.c_str());
      if (bv > 1) r.fail(where + ": bool value " + std::to_string(bv) + " is not 0 or 1");
      v.kind = MetaValue::Kind::Bool;
      v.b = bv != 0;
      break;
    }
    case kString:
      v.kind = MetaValue::Kind::String;
      v.s = read_charged_string(r, b, where);
      break;
    case kArray: {
      if (depth >= gguf_array_depth_max) r.fail(where + ": arrays nested too deeply");
      uint32_t et = r.read<uint32_t>(key.c_str());
      uint64_t n = r.read<uint64_t>(key.c_str());
      if (et >= kTypeCount)
        r.fail(where + ": unknown array element type " + std::to_string(et));
      // Every element takes at least min_value_size bytes: reject impossible counts up front.
      if (n > r.remaining() / min_value_size(et))
        r.fail(where + ": array of " + std::to_string(n) + " elements cannot fit in the remaining " +
               std::to_string(r.remaining()) + " bytes");
      if (n > gguf_array_len_max)
        r.fail(where + ": array of " + std::to_string(n) + " elements exceeds the limit of " +
               std::to_string(gguf_array_len_max));
      v.kind = MetaValue::Kind::Array;
      v.gguf_type = static_cast<int32_t>(et);
      if (et == kString) {
        b.charge_n(n, sizeof(std::string), where + ": array of " + std::to_string(n) + " strings");
        v.strings.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.strings.push_back(read_charged_string(r, b, where));
      } else if (et == kArray) {
        b.charge_n(n, sizeof(MetaValue), where + ": array of " + std::to_string(n) + " arrays");
        v.array.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(r, b, et, key, depth + 1));
      } else {
        const uint64_t bytes = n * min_value_size(et);  // cannot overflow: n <= remaining / size
        r.need(bytes, "metadata array");
        b.charge(bytes, where + ": array of " + std::to_string(n) + " values");
        v.packed.assign(reinterpret_cast<const char*>(r.here()), bytes);
        r.skip(bytes);
        if (et == kBool)
          for (char c : v.packed)
            if (static_cast<uint8_t>(c) > 1) r.fail(where + ": bool value is not 0 or 1");
      }
      break;
    }
    default:
      r.fail(where + ": unknown value type " + std::to_string(type));
  }
  return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

void gguf_load(ModelFile& mf, const std::string& path) {
  auto map = MappedFile::open(path);
  mf.maps_.push_back(map);
  mf.format_ = "gguf";
  Reader r(path, map->data(), map->size());

  if (map->size() < 4) r.fail("truncated file: too short for the GGUF magic");
  uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) r.fail("not a GGUF file (bad magic)");
  uint32_t version = r.read<uint32_t>("version");
  if (version == 0x02000000u || version == 0x03000000u)
    r.fail("big-endian GGUF files are not supported");
  if (version != 2 && version != 3)
    r.fail("unsupported GGUF version " + std::to_string(version) + " (supported: 2, 3)");
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // A kv takes >= 13 bytes (u64 key length, u32 type, 1-byte value); a tensor info >= 24.
  if (n_kv > r.remaining() / 13)
    r.fail("metadata count " + std::to_string(n_kv) + " is impossible for a file of this size (truncated or corrupt)");
  if (n_kv > gguf_kv_count_max)
    r.fail("metadata count " + std::to_string(n_kv) + " exceeds the limit of " + std::to_string(gguf_kv_count_max));

  // Each key is held twice (the map and the duplicate check), plus a hash-set node.
  constexpr uint64_t kKvBytes = sizeof(std::pair<std::string, MetaValue>) + sizeof(std::string) + 32;
  Budget meta_budget(r, "metadata", gguf_metadata_memory_max);
  meta_budget.charge_n(n_kv, kKvBytes, "metadata count " + std::to_string(n_kv));
  mf.metadata_.reserve(n_kv);
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t key_len = r.string_len("metadata key");
    meta_budget.charge(2 * Budget::string_heap(key_len), "metadata key");
    std::string key = r.read_string("metadata key");
    uint32_t type = r.read<uint32_t>("metadata type");
    if (!utf8_valid(key)) r.fail("metadata key is not valid UTF-8");
    if (!keys.insert(key).second) r.fail("duplicate metadata key '" + key + "'");
    mf.metadata_.emplace_back(key, read_value(r, meta_budget, type, key, 0));
  }

  if (n_tensors > r.remaining() / 24)
    r.fail("tensor count " + std::to_string(n_tensors) + " is impossible for a file of this size (truncated or corrupt)");
  if (n_tensors > gguf_tensor_count_max)
    r.fail("tensor count " + std::to_string(n_tensors) + " exceeds the limit of " +
           std::to_string(gguf_tensor_count_max));

  uint64_t alignment = 32;
  if (const MetaValue* a = meta_find(mf.metadata_, "general.alignment")) {
    if (a->kind != MetaValue::Kind::UInt || a->u == 0 || (a->u & (a->u - 1)) != 0)
      r.fail("general.alignment must be a power-of-two unsigned integer");
    alignment = a->u;
  }

  struct Pending {
    TensorInfo t;
    uint64_t rel_offset;
  };
  // Per tensor: the pending entry, its copy in mf.tensors_, a name-index node (~64 bytes), the
  // by-offset pointer; per name: its heap bytes in the entry, the copy and the index.
  constexpr uint64_t kTensorBytes = sizeof(Pending) + sizeof(TensorInfo) + 64 + sizeof(void*);
  Budget table_budget(r, "tensor table", gguf_tensor_table_memory_max);
  table_budget.charge_n(n_tensors, kTensorBytes, "tensor count " + std::to_string(n_tensors));
  std::vector<Pending> pending;
  pending.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Pending p;
    const uint64_t name_len = r.string_len("tensor name");
    table_budget.charge(3 * Budget::string_heap(name_len) + 2 * kMaxDims * sizeof(int64_t), "tensor name");
    p.t.name = r.read_string("tensor name");
    const std::string& nm = p.t.name;
    if (!utf8_valid(nm)) r.fail("tensor name is not valid UTF-8");
    uint32_t n_dims = r.read<uint32_t>("tensor n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      r.fail("tensor '" + nm + "': " + std::to_string(n_dims) + " dims (1.." + std::to_string(kMaxDims) + " allowed)");
    uint64_t ne[kMaxDims];
    // The product of the nonzero dims must fit int64, even when a zero dim makes the tensor empty:
    // TensorInfo::n_elements() multiplies in shape order, and [0, 2^40, 2^40] would overflow it
    // (found by fuzz_gguf; tests/test_fuzz_regressions.py).
    uint64_t n_el = 1;
    bool has_zero = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<uint64_t>("tensor dims");
      if (ne[d] == 0) { has_zero = true; continue; }
      if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || mul_overflows(n_el, ne[d], &n_el) ||
          n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        r.fail("tensor '" + nm + "': dims overflow the element count");
    }
    if (has_zero) n_el = 0;
    uint32_t type = r.read<uint32_t>("tensor type");
    const DTypeTraits* tr = dtype_traits_from_ggml_id(type);
    if (!tr) r.fail("tensor '" + nm + "': unknown tensor type " + std::to_string(type));
    p.t.type = static_cast<DType>(type);
    p.rel_offset = r.read<uint64_t>("tensor offset");
    if (ne[0] % tr->block_size != 0)
      r.fail("tensor '" + nm + "': row length " + std::to_string(ne[0]) + " is not a multiple of the " +
             tr->name + " block size " + std::to_string(tr->block_size));
    if (mul_overflows(n_el / tr->block_size, tr->block_bytes, &p.t.nbytes))
      r.fail("tensor '" + nm + "': byte size overflows");
    for (int d = static_cast<int>(n_dims) - 1; d >= 0; --d) p.t.shape.push_back(static_cast<int64_t>(ne[d]));
    if (p.rel_offset % alignment != 0)
      r.fail("tensor '" + nm + "': data offset " + std::to_string(p.rel_offset) + " is not aligned to " +
             std::to_string(alignment));
    pending.push_back(std::move(p));
  }

  uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  if (n_tensors > 0 && data_start > map->size())
    r.fail("truncated file: tensor data section starts at " + std::to_string(data_start) + " past the end");
  const uint64_t data_size = map->size() > data_start ? map->size() - data_start : 0;

  for (Pending& p : pending) {
    if (p.rel_offset > data_size || p.t.nbytes > data_size - p.rel_offset)
      throw FormatError(path + ": tensor '" + p.t.name + "' data [" + std::to_string(p.rel_offset) + ", +" +
                        std::to_string(p.t.nbytes) + ") runs past the end of the file (data section holds " +
                        std::to_string(data_size) + " bytes)");
    p.t.offset = data_start + p.rel_offset;
    p.t.data = map->data() + p.t.offset;
  }
  // No two tensors may share bytes.
  std::vector<const Pending*> by_off;
  for (const Pending& p : pending) by_off.push_back(&p);
  std::sort(by_off.begin(), by_off.end(),
            [](const Pending* a, const Pending* b) { return a->t.offset < b->t.offset; });
  for (size_t k = 1; k < by_off.size(); ++k) {
    const TensorInfo& a = by_off[k - 1]->t;
    const TensorInfo& b = by_off[k]->t;
    if (a.nbytes > 0 && b.nbytes > 0 && a.offset + a.nbytes > b.offset)
      throw FormatError(path + ": tensors '" + a.name + "' and '" + b.name + "' overlap in the data section");
  }
  for (Pending& p : pending) mf.add_tensor(std::move(p.t));
  mf.config_ = config_from_gguf(mf);
}

}  // namespace fastspec
