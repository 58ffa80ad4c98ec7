#include "model/draft_head.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "fastspec/status.h"
#include "io/sha256.h"

namespace fastspec {
namespace {

const std::string* meta_string(const ModelFile& f, const std::string& key) {
  const MetaValue* v = meta_find(f.metadata(), key);
  if (!v) throw FormatError(f.path() + ": draft head metadata '" + key + "' is missing");
  if (v->kind != MetaValue::Kind::String) throw FormatError(f.path() + ": draft head metadata '" + key + "' must be a string");
  return &v->s;
}

void hash_file_into(Sha256& h, const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw IoError(path + ": cannot open to compute its sha256");
  std::vector<uint8_t> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update(buf.data(), n);
  if (std::ferror(f.get())) throw IoError(path + ": read error while computing its sha256");
}

}  // namespace

bool is_draft_head(const ModelFile& f) {
  const std::string& a = f.config().architecture;
  return a == "fastspec-eagle" || a == "fastspec-medusa";
}

HeadMeta read_head_meta(const ModelFile& head) {
  HeadMeta m;
  m.kind = *meta_string(head, "fastspec.head.kind");
  if (m.kind != "eagle" && m.kind != "medusa")
    throw FormatError(head.path() + ": fastspec.head.kind is '" + m.kind + "' (expected 'eagle' or 'medusa')");
  m.target_sha256 = *meta_string(head, "fastspec.head.target_sha256");
  m.vocab_hash = *meta_string(head, "fastspec.head.vocab_hash");
  m.target_name = *meta_string(head, "fastspec.head.target_name");
  const MetaValue* fl = meta_find(head.metadata(), "fastspec.head.feature_layer");
  if (!fl || !fl->is_number()) throw FormatError(head.path() + ": draft head metadata 'fastspec.head.feature_layer' is missing");
  m.feature_layer = fl->as_int();
  const MetaValue* fls = meta_find(head.metadata(), "fastspec.head.feature_layers");
  if (!fls) {
    m.feature_layers.assign(1, static_cast<int32_t>(m.feature_layer));
  } else {
    if (fls->kind != MetaValue::Kind::Array || fls->array_size() == 0)
      throw FormatError(head.path() + ": draft head metadata 'fastspec.head.feature_layers' must be a non-empty int32 array");
    for (size_t j = 0; j < fls->array_size(); ++j) {
      const MetaValue e = fls->array_at(j);
      if (!e.is_number() || e.as_int() < 0 || e.as_int() > INT32_MAX ||
          (j > 0 && e.as_int() <= m.feature_layers.back()))
        throw FormatError(head.path() + ": fastspec.head.feature_layers must be ascending non-negative int32s (element " +
                          std::to_string(j) + ")");
      m.feature_layers.push_back(static_cast<int32_t>(e.as_int()));
    }
    if (m.feature_layers.back() != m.feature_layer)
      throw FormatError(head.path() + ": fastspec.head.feature_layers ends with " + std::to_string(m.feature_layers.back()) +
                        ", not with fastspec.head.feature_layer " + std::to_string(m.feature_layer));
  }
  const MetaValue* ids = meta_find(head.metadata(), "fastspec.head.vocab_ids");
  if (!ids || ids->kind != MetaValue::Kind::Array || ids->array_size() == 0)
    throw FormatError(head.path() + ": draft head metadata 'fastspec.head.vocab_ids' must be a non-empty int32 array");
  const size_t n = ids->array_size();
  m.vocab_ids.resize(n);
  for (size_t j = 0; j < n; ++j) {
    const MetaValue e = ids->array_at(j);
    if (!e.is_number()) throw FormatError(head.path() + ": fastspec.head.vocab_ids[" + std::to_string(j) + "] is not a number");
    const int64_t v = e.as_int();
    if (v < 0 || v > INT32_MAX || (j > 0 && v <= m.vocab_ids[j - 1]))
      throw FormatError(head.path() + ": fastspec.head.vocab_ids must be ascending non-negative int32 ids (element " +
                        std::to_string(j) + " is " + std::to_string(v) + ")");
    m.vocab_ids[j] = static_cast<int32_t>(v);
  }
  return m;
}

TargetTie target_tie(const ModelFile& target) {
  namespace fs = std::filesystem;
  TargetTie t;
  Sha256 h;
  fs::path p(target.path());
  std::error_code ec;
  if (fs::is_directory(p, ec) || (p.extension() == ".json")) {
    const fs::path dir = fs::is_directory(p, ec) ? p : p.parent_path();
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) hash_file_into(h, (dir / f).string());
  } else {
    hash_file_into(h, target.path());
  }
  t.sha256 = h.hex_digest();
  Sha256 v;
  const MetaValue* toks = meta_find(target.metadata(), "tokenizer.ggml.tokens");
  if (toks && toks->kind == MetaValue::Kind::Array && !toks->strings.empty()) {
    const char zero = 0;
    for (const std::string& s : toks->strings) v.update(s.data(), s.size()), v.update(&zero, 1);
  } else {
    const std::string s = "vocab_size=" + std::to_string(target.config().vocab_size);
    v.update(s.data(), s.size());
  }
  t.vocab_hash = v.hex_digest();
  return t;
}

void check_head_target(const ModelFile& head, const HeadMeta& m, int64_t head_n_embd, const ModelFile& target) {
  const TargetTie t = target_tie(target);
  if (t.sha256 != m.target_sha256 || t.vocab_hash != m.vocab_hash)
    throw ModelError("draft head '" + head.path() + "' was distilled from '" + m.target_name + "' (sha256 " +
                     m.target_sha256 + ", vocabulary " + m.vocab_hash + "), not from target '" + target.path() +
                     "' (sha256 " + t.sha256 + ", vocabulary " + t.vocab_hash + ")" +
                     (t.vocab_hash == m.vocab_hash ? "; the vocabularies match but the weights differ" : "") +
                     "; distill a head for this target: fastspec distill TARGET --out HEAD.gguf");
  const ModelConfig& c = target.config();
  if (head_n_embd != c.n_embd)
    throw ModelError("draft head '" + head.path() + "' is " + std::to_string(head_n_embd) + " wide but target '" +
                     target.path() + "' has n_embd " + std::to_string(c.n_embd));
  for (const int32_t l : m.feature_layers)
    if (l < 0 || l > c.n_layers)
      throw ModelError("draft head '" + head.path() + "' reads hidden state " + std::to_string(l) + " but target '" +
                       target.path() + "' has states 0.." + std::to_string(c.n_layers));
  if (m.vocab_ids.back() >= c.vocab_size)
    throw ModelError("draft head '" + head.path() + "' has output id " + std::to_string(m.vocab_ids.back()) +
                     " beyond the vocabulary of " + std::to_string(c.vocab_size) + " of target '" + target.path() + "'");
}

}  // namespace fastspec
