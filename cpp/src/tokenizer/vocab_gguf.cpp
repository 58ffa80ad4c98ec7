// Vocab from GGUF metadata, with the defaults tokenizer_load.py (load_gguf) applies:
//   model "llama" when absent; pre "default"; token types all NORMAL; add_space_prefix true;
//   add_bos = tokenizer.ggml.add_bos_token, else (gpt2) true for the Llama-3-like pre names,
//   (llama) true; an id outside [0, n) counts as absent.
#include <cstring>
#include <set>

#include "fastspec/status.h"
#include "io/utf8.h"
#include "tokenizer/vocab.h"

namespace fastspec::tok {
namespace {

using Kind = MetaValue::Kind;

struct Reader {
  const MetaMap& md;
  const std::string& where;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ModelError(where + ": metadata '" + key + "' " + what);
  }

  const MetaValue* find(const std::string& key) const { return meta_find(md, key); }

  bool str(const std::string& key, std::string& out) const {
    const MetaValue* v = find(key);
    if (!v) return false;
    if (v->kind != Kind::String) fail(key, "must be a string");
    if (!utf8_valid(v->s)) fail(key, "must be a string, got one that is not valid UTF-8");
    out = v->s;
    return true;
  }

  bool flag(const std::string& key, bool dflt) const {
    const MetaValue* v = find(key);
    if (!v) return dflt;
    if (v->kind == Kind::Bool) return v->b;
    if (v->kind == Kind::Int) return v->i != 0;
    if (v->kind == Kind::UInt) return v->u != 0;
    fail(key, "must be a bool");
  }

  // An id key: -1 when absent or outside [0, n).
  int32_t id(const std::string& key, size_t n) const {
    const MetaValue* v = find(key);
    if (!v) return -1;
    int64_t x;
    if (v->kind == Kind::Bool) x = v->b ? 1 : 0;  // Python's bool is an int
    else if (v->kind == Kind::Int) x = v->i;
    else if (v->kind == Kind::UInt) x = v->u > n ? -1 : static_cast<int64_t>(v->u);
    else fail(key, "must be an integer");
    return x >= 0 && static_cast<uint64_t>(x) < n ? static_cast<int32_t>(x) : -1;
  }

  bool strings(const std::string& key, std::vector<std::string>& out) const {
    const MetaValue* v = find(key);
    if (!v) return false;
    if (v->kind != Kind::Array || (v->array_size() > 0 && v->strings.empty()))
      fail(key, "must be an array of strings");
    out = v->strings;
    for (size_t k = 0; k < out.size(); ++k)
      if (!utf8_valid(out[k]))
        fail(key, "must be an array of strings; element " + std::to_string(k) + " is not valid UTF-8");
    return true;
  }

  // Numbers of an array of any numeric element type (integers only when `integers`).
  bool numbers(const std::string& key, bool integers, std::vector<double>& out) const {
    const MetaValue* v = find(key);
    if (!v) return false;
    const char* what = integers ? "must be an array of integers" : "must be an array of numbers";
    if (v->kind != Kind::Array) fail(key, what);
    const size_t n = v->array_size();
    out.resize(n);
    if (n && !v->strings.empty()) fail(key, what);
    if (v->gguf_type == 6 && !v->packed.empty()) {  // f32, the common case
      if (integers) fail(key, what);
      for (size_t k = 0; k < n; ++k) {
        float f;
        std::memcpy(&f, v->packed.data() + 4 * k, 4);
        out[k] = f;
      }
      return true;
    }
    if (v->gguf_type == 5 && !v->packed.empty()) {  // i32, the common case
      for (size_t k = 0; k < n; ++k) {
        int32_t x;
        std::memcpy(&x, v->packed.data() + 4 * k, 4);
        out[k] = x;
      }
      return true;
    }
    for (size_t k = 0; k < n; ++k) {
      const MetaValue e = v->array_at(k);
      const bool ok = integers ? (e.kind == Kind::Int || e.kind == Kind::UInt || e.kind == Kind::Bool)
                               : (e.is_number() || e.kind == Kind::Bool);
      if (!ok) fail(key, std::string(what) + "; element " + std::to_string(k) + " is not");
      out[k] = e.kind == Kind::Bool ? (e.b ? 1.0 : 0.0) : e.as_double();
    }
    return true;
  }
};

}  // namespace

Vocab vocab_from_metadata(const MetaMap& md, const std::string& where) {
  const Reader r{md, where};
  Vocab v;
  v.where = where;
  if (!r.strings("tokenizer.ggml.tokens", v.tokens) || v.tokens.empty())
    throw ModelError(where + ": the GGUF file has no tokenizer data (no tokenizer.ggml.tokens in its "
                     "metadata); use a GGUF converted with its vocabulary");
  const size_t n = v.tokens.size();
  if (n > 0x7FFFFFFF) r.fail("tokenizer.ggml.tokens", "has too many entries");

  v.model_name = "llama";
  r.str("tokenizer.ggml.model", v.model_name);
  if (v.model_name == "gpt2") {
    v.model = VocabModel::kByteLevel;
  } else if (v.model_name == "llama") {
    v.model = VocabModel::kSentencePiece;
  } else {
    throw ModelError(where + ": tokenizer model '" + v.model_name + "' (metadata 'tokenizer.ggml.model') "
                     "is not supported (fastspec reads 'gpt2' byte-level BPE and 'llama' "
                     "SentencePiece-style vocabularies)");
  }
  r.str("general.architecture", v.arch);
  if (!r.str("tokenizer.ggml.pre", v.pre) || v.pre.empty()) v.pre = "default";

  std::vector<double> types;
  if (r.numbers("tokenizer.ggml.token_type", true, types) && !types.empty()) {
    if (types.size() != n)
      throw ModelError(where + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                       " entries for " + std::to_string(n) + " tokens");
    v.types.assign(types.begin(), types.end());
  } else {
    v.types.assign(n, kTokenNormal);
  }
  r.strings("tokenizer.ggml.merges", v.merges);
  v.has_scores = r.numbers("tokenizer.ggml.scores", false, v.scores);

  v.bos = r.id("tokenizer.ggml.bos_token_id", n);
  v.eos = r.id("tokenizer.ggml.eos_token_id", n);
  v.unk = r.id("tokenizer.ggml.unknown_token_id", n);
  v.pad = r.id("tokenizer.ggml.padding_token_id", n);
  v.eot = r.id("tokenizer.ggml.eot_token_id", n);
  v.eom = r.id("tokenizer.ggml.eom_token_id", n);
  v.add_space_prefix = r.flag("tokenizer.ggml.add_space_prefix", true);

  // byte-level vocabularies llama.cpp adds BOS to when the file does not say
  static const std::set<std::string> kPreAddBos = {"llama3", "llama-v3", "llama-bpe", "falcon3", "tekken",
                                                    "chameleon"};
  const bool add_bos_default = v.model == VocabModel::kByteLevel ? kPreAddBos.count(v.pre) > 0 : true;
  v.add_bos = r.flag("tokenizer.ggml.add_bos_token", add_bos_default) && v.bos >= 0;
  v.add_eos = r.flag("tokenizer.ggml.add_eos_token", false) && v.eos >= 0;
  return v;
}

}  // namespace fastspec::tok
