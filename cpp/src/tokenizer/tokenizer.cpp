// Tokenizer: loading, and encoding as tokenizers' pipeline runs it
//   ids = [BOS] + for each piece of the text cut by the added tokens: the added token's id, or
//         the segment model's ids of the text between + [EOS]
// and decoding from the per-token byte table.
#include "fastspec/tokenizer.h"

#include <algorithm>

#include "fastspec/model_file.h"
#include "fastspec/status.h"
#include "tokenizer/tokenizer_impl.h"

namespace fastspec {

Tokenizer Tokenizer::from_metadata(const MetaMap& md, const std::string& where) {
  return Tokenizer(tok::tokenizer_build(tok::vocab_from_metadata(md, where)));
}

Tokenizer Tokenizer::from_model_file(const ModelFile& mf) {
  if (mf.format() != "gguf")
    throw ModelError(mf.path() + ": the C++ tokenizer reads the vocabulary of a GGUF file (this is a " +
                     mf.format() + " model)");
  return from_metadata(mf.metadata(), mf.path());
}

Tokenizer Tokenizer::from_file(const std::string& path) { return from_model_file(*ModelFile::open(path)); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const tok::TokenizerImpl& t = *impl_;
  const size_t bad = tok::utf8_check(text);
  if (bad != std::string_view::npos)
    throw InvalidArgument("Tokenizer::encode (" + t.vocab.where + "): the text is not valid UTF-8 (at byte " +
                          std::to_string(bad) + " of " + std::to_string(text.size()) + ")");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && t.vocab.add_bos) out.push_back(t.vocab.bos);
  std::vector<tok::AddedTokens::Match> matches;
  t.added.find(text, parse_special, matches);
  tok::EncodeScratch s;
  size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin > pos) t.model->encode(text.substr(pos, m.begin - pos), pos == 0, s, out);
    out.push_back(m.id);
    pos = m.end;
  }
  if (pos < text.size()) t.model->encode(text.substr(pos), pos == 0, s, out);
  if (add_special && t.vocab.add_eos) out.push_back(t.vocab.eos);
  return out;
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= impl_->vocab.size())
    throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(impl_->vocab.size()) + ") of " + impl_->vocab.where);
}

std::string Tokenizer::decode(const int32_t* ids, size_t n, bool skip_special) const {
  const tok::TokenizerImpl& t = *impl_;
  std::string bytes;
  bool first = true;
  for (size_t k = 0; k < n; ++k) {
    check_id(ids[k]);
    if (skip_special && t.special[ids[k]]) continue;
    std::string_view b = t.pieces.at(ids[k]);
    if (first && t.strip_first_space && !b.empty() && b[0] == ' ') b.remove_prefix(1);
    first = false;
    bytes.append(b.data(), b.size());
  }
  std::string out;
  out.reserve(bytes.size());
  tok::utf8_replace_append(bytes, true, out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  check_id(id);
  return std::string(impl_->pieces.at(id));
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return impl_->vocab.tokens[id];
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab.size(); }
int32_t Tokenizer::bos_id() const { return impl_->vocab.bos; }
int32_t Tokenizer::eos_id() const { return impl_->vocab.eos; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return impl_->vocab.add_eos; }
const std::vector<int32_t>& Tokenizer::eog_ids() const { return impl_->eog; }
const std::string& Tokenizer::model() const { return impl_->vocab.model_name; }
const std::string& Tokenizer::source() const { return impl_->vocab.where; }

bool Tokenizer::is_special(int32_t id) const {
  check_id(id);
  return impl_->special[id] != 0;
}

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
}

}  // namespace fastspec
