// safetensors loader. File layout: u64 LE header length N | N bytes of JSON header | data.
// Header: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//          "__metadata__": {str: str}}; offsets are relative to the first data byte (8 + N).
// Every header field is validated against the file before any tensor points into the mapping.
#include "io/safetensors.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "fastspec/status.h"
#include "io/awq_config.h"
#include "io/config_hf.h"
#include "io/json.h"
#include "io/mmap.h"

namespace fastspec {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

// safetensors dtype name -> DType; false for names fastspec does not store.
bool dtype_from_name(const std::string& name, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I8", DType::I8},   {"I16", DType::I16}, {"I32", DType::I32},   {"I64", DType::I64},
      {"U8", DType::U8},   {"BOOL", DType::BOOL},
  };
  for (const auto& e : table)
    if (name == e.first) { out = e.second; return true; }
  return false;
}

// A tensor parsed from one header, before it is handed to the ModelFile.
struct Entry {
  TensorInfo info;
  uint64_t begin = 0, end = 0;  // relative to the data start
};

[[noreturn]] void entry_fail(const std::string& file, const std::string& name,
                             const std::string& problem) {
  throw FormatError(file + ": tensor '" + name + "': " + problem);
}

// Parses and validates one tensor entry of `file`'s header. data_len: bytes after the header.
Entry parse_entry(const std::string& file, const std::string& name, const MetaValue& v,
                  uint64_t data_len) {
  auto fail = [&](const std::string& problem) { entry_fail(file, name, problem); };
  Entry e;
  e.info.name = name;
  if (v.kind != MetaValue::Kind::Object) fail("header entry is not a JSON object");

  const MetaValue* dt = v.get("dtype");
  if (!dt) fail("missing dtype");
  if (dt->kind != MetaValue::Kind::String) fail("dtype must be a string");
  if (!dtype_from_name(dt->s, e.info.type)) fail("unknown dtype '" + json_snippet(dt->s) + "'");
  const int64_t elem_bytes = dtype_traits(e.info.type)->block_bytes;

  const MetaValue* sh = v.get("shape");
  if (!sh) fail("missing shape");
  if (sh->kind != MetaValue::Kind::Array) fail("shape must be an array of non-negative integers");
  int64_t n_elem = 1;
  bool overflow = false;
  for (const MetaValue& d : sh->array) {
    if (d.kind == MetaValue::Kind::UInt) fail("shape dimension " + std::to_string(d.u) + " overflows int64");
    if (d.kind == MetaValue::Kind::Float && std::isinf(d.f)) fail("shape dimension overflows int64");
    if (d.kind != MetaValue::Kind::Int || d.i < 0)
      fail("shape must be an array of non-negative integers");
    e.info.shape.push_back(d.i);
    if (__builtin_mul_overflow(n_elem, d.i, &n_elem)) overflow = true;
  }
  // Refused even with a zero dimension ([2^40, 2^40, 0] holds nothing): TensorInfo::n_elements()
  // multiplies in shape order and would overflow (the GGUF twin was found by fuzz_gguf).
  bool has_zero = std::find(e.info.shape.begin(), e.info.shape.end(), 0) != e.info.shape.end();
  if (overflow) fail("shape " + shape_str(e.info.shape) + " has more elements than fit int64");
  if (has_zero) n_elem = 0;

  const MetaValue* off = v.get("data_offsets");
  if (!off) fail("missing data_offsets");
  if (off->kind != MetaValue::Kind::Array || off->array.size() != 2)
    fail("data_offsets must be an array [begin, end] of two non-negative integers");
  uint64_t be[2];
  for (int k = 0; k < 2; ++k) {
    const MetaValue& o = off->array[k];
    if (o.kind == MetaValue::Kind::Int && o.i >= 0) be[k] = static_cast<uint64_t>(o.i);
    else if (o.kind == MetaValue::Kind::UInt) be[k] = o.u;
    else fail("data_offsets must be an array [begin, end] of two non-negative integers");
  }
  e.begin = be[0];
  e.end = be[1];
  if (e.end < e.begin)
    fail("data_offsets end " + std::to_string(e.end) + " < begin " + std::to_string(e.begin));
  if (e.end > data_len)
    fail("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
         "] run past the end of the data (" + std::to_string(data_len) + " bytes)");
  int64_t need = 0;
  if (__builtin_mul_overflow(n_elem, elem_bytes, &need))
    fail("shape " + shape_str(e.info.shape) + " of " + dt->s + " needs more bytes than fit int64");
  e.info.nbytes = e.end - e.begin;
  if (e.info.nbytes != static_cast<uint64_t>(need))
    fail("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
         std::to_string(e.info.nbytes) + " bytes but shape " + shape_str(e.info.shape) + " of " +
         dt->s + " needs " + std::to_string(need) + " bytes");
  return e;
}

// Maps one .safetensors file (kept alive in mf.maps_) and validates its header. Returns its
// tensors sorted by offset; appends its __metadata__ entries (first one wins) to `st_meta`,
// whose keys are also in `st_seen` (a linear search per key was quadratic in a hostile header).
std::vector<TensorInfo> read_file(ModelFile& mf, const std::string& file, MetaMap& st_meta,
                                  std::unordered_set<std::string>& st_seen) {
  std::shared_ptr<MappedFile> map = MappedFile::open(file);
  const uint64_t size = map->size();
  if (size < 8)
    throw FormatError(file + ": file is " + std::to_string(size) +
                      " bytes, too short for a safetensors header (needs at least 8)");
  const uint8_t* base = map->data();
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | base[k];
  if (n > safetensors_header_max)
    throw FormatError(file + ": header length " + std::to_string(n) + " is absurd (limit " +
                      std::to_string(safetensors_header_max) + " bytes)");
  if (n > size - 8)
    throw FormatError(file + ": header length " + std::to_string(n) +
                      " runs past the end of the file (" + std::to_string(size) + " bytes)");
  const uint64_t data_start = 8 + n;
  const uint64_t data_len = size - data_start;

  MetaValue header = json_parse(reinterpret_cast<const char*>(base + 8), n, file + " header");
  if (header.kind != MetaValue::Kind::Object)
    throw FormatError(file + ": header is not a JSON object");

  std::vector<Entry> entries;
  entries.reserve(header.object.size());
  for (auto& kv : header.object) {
    if (kv.first == "__metadata__") {
      if (kv.second.kind != MetaValue::Kind::Object)
        throw FormatError(file + ": __metadata__ is not a JSON object");
      for (auto& m : kv.second.object) {
        std::string key = "safetensors." + m.first;
        if (st_seen.insert(key).second) st_meta.emplace_back(std::move(key), std::move(m.second));
      }
      continue;
    }
    entries.push_back(parse_entry(file, kv.first, kv.second, data_len));
  }

  // No two non-empty tensors may share bytes (sorted by begin, each must start after the
  // furthest end seen so far).
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  const Entry* furthest = nullptr;
  for (const Entry& e : entries) {
    if (e.info.nbytes == 0) continue;
    if (furthest && e.begin < furthest->end)
      throw FormatError(file + ": tensor '" + e.info.name + "' [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + ") overlaps tensor '" + furthest->info.name + "' [" +
                        std::to_string(furthest->begin) + ", " + std::to_string(furthest->end) + ")");
    if (!furthest || e.end > furthest->end) furthest = &e;
  }

  std::vector<TensorInfo> tensors;
  tensors.reserve(entries.size());
  for (Entry& e : entries) {
    e.info.offset = data_start + e.begin;
    e.info.data = base + e.info.offset;
    tensors.push_back(std::move(e.info));
  }
  mf.maps_.push_back(std::move(map));
  return tensors;
}

// A JSON side file (config.json, an index), refused before parsing when over json_file_bytes_max.
MetaValue read_json_file(const std::string& file) {
  std::shared_ptr<MappedFile> map = MappedFile::open(file);
  if (map->size() > json_file_bytes_max)
    throw FormatError(file + ": JSON file of " + std::to_string(map->size()) + " bytes exceeds the limit of " +
                      std::to_string(json_file_bytes_max) + " bytes");
  return json_parse(reinterpret_cast<const char*>(map->data()), map->size(), file);
}

// A directory -> the checkpoint file inside it (index preferred, then model.safetensors, then a
// lone *.safetensors.index.json or *.safetensors).
std::string resolve_directory(const std::string& dir) {
  fs::path d(dir.empty() ? "." : dir);
  for (const char* name : {"model.safetensors.index.json", "model.safetensors"})
    if (fs::is_regular_file(d / name)) return (d / name).string();
  std::vector<std::string> indexes, files;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(d, ec)) {
    std::string name = de.path().filename().string();
    if (ends_with(name, ".safetensors.index.json")) indexes.push_back(de.path().string());
    else if (ends_with(name, ".safetensors")) files.push_back(de.path().string());
  }
  if (ec) throw IoError(dir + ": cannot list directory: " + ec.message());
  if (indexes.size() == 1) return indexes[0];
  if (indexes.empty() && files.size() == 1) return files[0];
  if (indexes.empty() && files.empty())
    throw IoError(dir + ": no such file: model.safetensors or model.safetensors.index.json "
                        "(the directory holds no safetensors checkpoint)");
  throw FormatError(dir + ": directory holds " + std::to_string(files.size()) +
                    " .safetensors files and " + std::to_string(indexes.size()) +
                    " index files but no model.safetensors(.index.json); pass one file");
}

// Adds a virtual AWQ_INT4 "<prefix>.weight" [out, in] for every "<prefix>.qweight" (AutoAWQ GEMM),
// after checking its parts: qweight I32 [in, out/8], qzeros I32 [in/group, out/8], scales F16
// [in/group, out]. file_of: tensor name -> file, for messages.
void add_awq_tensors(ModelFile& mf, const AwqConfig& c,
                     const std::unordered_map<std::string, std::string>& file_of) {
  const size_t n = mf.tensors_.size();
  for (size_t k = 0; k < n; ++k) {
    const std::string name = mf.tensors_[k].name;
    if (!ends_with(name, ".qweight")) continue;
    const std::string prefix = name.substr(0, name.size() - 8);
    const std::string& file = file_of.at(name);
    auto fail = [&](const std::string& problem) {
      throw ModelError(file + ": AWQ tensor '" + name + "': " + problem + " (AutoAWQ GEMM layout: qweight I32 [in, "
                       "out/8], qzeros I32 [in/group, out/8], scales F16 [in/group, out])");
    };
    const TensorInfo* qz = mf.find(prefix + ".qzeros");
    const TensorInfo* sc = mf.find(prefix + ".scales");
    if (!qz) fail("no '" + prefix + ".qzeros' beside it");
    if (!sc) fail("no '" + prefix + ".scales' beside it");
    const TensorInfo& qw = mf.tensors_[k];
    if (qw.type != DType::I32 || qw.shape.size() != 2)
      fail(std::string("qweight must be I32 [in, out/8], got ") + dtype_name(qw.type) + " " + shape_str(qw.shape));
    if (qz->type != DType::I32 || qz->shape.size() != 2)
      fail(std::string("qzeros must be I32 [in/group, out/8], got ") + dtype_name(qz->type) + " " +
           shape_str(qz->shape));
    if (sc->type != DType::F16 || sc->shape.size() != 2)
      fail(std::string("scales must be F16 [in/group, out], got ") + dtype_name(sc->type) + " " +
           shape_str(sc->shape));
    const int64_t in = qw.shape[0], out = qw.shape[1] * 8;
    const int64_t group = c.group_size == -1 ? in : c.group_size;
    if (group <= 0 || in % group != 0)
      fail("in_features " + std::to_string(in) + " is not a multiple of group_size " + std::to_string(group));
    const int64_t n_groups = in / group;
    const std::string sizes = " (qweight " + shape_str(qw.shape) + ", qzeros " + shape_str(qz->shape) +
                              ", scales " + shape_str(sc->shape) + ", group_size " +
                              std::to_string(group) + ")";
    if (sc->shape[0] != n_groups || sc->shape[1] != out)
      fail("scales shape should be [" + std::to_string(n_groups) + ", " + std::to_string(out) + "]" + sizes);
    if (qz->shape[0] != n_groups || qz->shape[1] != qw.shape[1])
      fail("qzeros shape should be [" + std::to_string(n_groups) + ", " + std::to_string(qw.shape[1]) +
           "]" + sizes);

    TensorInfo t;
    t.name = prefix + ".weight";
    t.type = DType::AWQ_INT4;
    t.shape = {out, in};
    t.offset = 0;
    t.nbytes = qw.nbytes + qz->nbytes + sc->nbytes;
    t.data = nullptr;
    t.awq.qweight = static_cast<int32_t>(k);
    t.awq.qzeros = static_cast<int32_t>(qz - mf.tensors_.data());
    t.awq.scales = static_cast<int32_t>(sc - mf.tensors_.data());
    t.awq.group_size = static_cast<int32_t>(group);
    t.awq.bits = static_cast<int32_t>(c.bits);
    mf.add_tensor(std::move(t));  // may reallocate tensors_: nothing above is used after this
  }
}

}  // namespace

void safetensors_load(ModelFile& mf, const std::string& path) {
  if (mf.path_.empty()) mf.path_ = path;
  mf.format_ = "safetensors";
  // A directory, or its config.json, names the checkpoint inside it.
  const bool is_config = fs::path(path).filename() == "config.json";
  std::string file = fs::is_directory(path) ? resolve_directory(path)
                     : is_config            ? resolve_directory(fs::path(path).parent_path().string())
                                            : path;
  const fs::path dir = fs::path(file).parent_path();

  // The files to read, in order; for an index, the tensors each must hold.
  std::vector<std::string> shards;
  std::unordered_map<std::string, std::vector<std::string>> expected;  // shard -> tensors
  if (ends_with(file, ".json")) {
    MetaValue index = read_json_file(file);
    const MetaValue* wm = index.kind == MetaValue::Kind::Object ? index.get("weight_map") : nullptr;
    if (!wm) throw FormatError(file + ": not a safetensors index (no \"weight_map\" object)");
    if (wm->kind != MetaValue::Kind::Object) throw FormatError(file + ": \"weight_map\" is not a JSON object");
    if (wm->object.empty()) throw FormatError(file + ": \"weight_map\" names no tensors");
    for (const auto& kv : wm->object) {
      if (kv.second.kind != MetaValue::Kind::String || kv.second.s.empty())
        throw FormatError(file + ": weight_map entry for tensor '" + kv.first + "' is not a file name");
      std::string shard = (dir / kv.second.s).string();
      auto it = expected.find(shard);
      if (it == expected.end()) {
        if (!fs::is_regular_file(shard))
          throw FormatError(file + ": shard '" + kv.second.s + "' (holding tensor '" + kv.first +
                            "') is missing: " + shard);
        shards.push_back(shard);
        it = expected.emplace(shard, std::vector<std::string>()).first;
      }
      it->second.push_back(kv.first);
    }
  } else {
    shards.push_back(file);
  }

  // config.json beside the checkpoint.
  MetaValue config;
  const std::string config_path = (dir / "config.json").string();
  bool have_config = fs::is_regular_file(config_path);
  if (have_config) {
    config = read_json_file(config_path);
    if (config.kind != MetaValue::Kind::Object)
      throw FormatError(config_path + ": config.json is not a JSON object");
  }

  MetaMap st_meta;
  std::unordered_set<std::string> st_seen;
  std::unordered_map<std::string, std::string> file_of;
  for (const std::string& shard : shards) {
    std::vector<TensorInfo> tensors = read_file(mf, shard, st_meta, st_seen);
    std::unordered_set<std::string> names;
    for (TensorInfo& t : tensors) {
      if (auto prev = file_of.find(t.name); prev != file_of.end())
        throw FormatError(shard + ": tensor '" + t.name + "' is also in " + prev->second);
      names.insert(t.name);
      file_of.emplace(t.name, shard);
      mf.add_tensor(std::move(t));
    }
    auto it = expected.find(shard);
    if (it != expected.end())
      for (const std::string& want : it->second)
        if (!names.count(want))
          throw FormatError(file + ": weight_map puts tensor '" + want + "' in " + shard +
                            ", but that file does not hold it");
  }

  if (have_config) {
    for (const auto& kv : config.object) mf.metadata_.push_back(kv);
    mf.config_ = config_from_hf(config, config_path);
  }
  for (auto& kv : st_meta) mf.metadata_.push_back(std::move(kv));

  const MetaValue* qc = have_config ? config.get("quantization_config") : nullptr;
  if (qc) {  // unsupported settings keep the raw parts; the transformer names them if asked to run
    AwqConfig awq = awq_config(qc, config_path);
    if (awq.enabled) add_awq_tensors(mf, awq, file_of);
  }
}

}  // namespace fastspec
