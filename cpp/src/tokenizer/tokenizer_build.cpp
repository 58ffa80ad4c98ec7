// Tokenizer state from a vocabulary, with tokenizer_load.py's rules:
//   added tokens (matched whole): CONTROL tokens (special; byte-level: only those spelled in the
//   byte alphabet, the others are converter mislabels) first, then USER_DEFINED ones whose
//   spelling is their own (byte-level: the spelling maps back to the same id; SentencePiece: not
//   respelled). Each takes the id its text has in the vocabulary.
//   special (skip_special): CONTROL tokens and BOS, EOS, UNK, PAD.
//   end of generation: EOS, EOT, EOM and tokens whose text is an end-of-turn marker.
//   decoding bytes: added tokens (SentencePiece: and special ones) are their text.
#include <algorithm>
#include <set>

#include "tokenizer/byte_level.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/tokenizer_impl.h"

namespace fastspec::tok {
namespace {

// llama.cpp's end-of-generation token texts (tokenizer_load.py's EOG_TOKEN_TEXTS)
const std::set<std::string>& eog_texts() {
  static const std::set<std::string> t = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
      "<|end_of_text|>", "<end_of_utterance>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
  };
  return t;
}

}  // namespace

std::shared_ptr<const TokenizerImpl> tokenizer_build(Vocab v) {
  auto t = std::make_shared<TokenizerImpl>();
  const int32_t n = v.size();
  std::vector<uint8_t> literal(n, 0);
  t->special.assign(n, 0);
  for (int32_t i = 0; i < n; ++i) t->special[i] = v.types[i] == kTokenControl;
  for (int32_t i : {v.bos, v.eos, v.unk, v.pad})
    if (i >= 0) t->special[i] = 1;

  if (v.model == VocabModel::kByteLevel) {
    auto m = std::make_unique<ByteLevelModel>(v);
    for (int32_t i = 0; i < n; ++i) {
      if (v.types[i] != kTokenControl) continue;
      const int32_t id = m->find_spelled(v.tokens[i]);
      if (id < 0) continue;  // spelled outside the byte alphabet
      t->added.add(v.tokens[i], id, true);
      literal[i] = 1;
    }
    for (int32_t i = 0; i < n; ++i) {
      if (v.types[i] != kTokenUserDefined || m->find_spelled(v.tokens[i]) != i) continue;
      t->added.add(v.tokens[i], i, false);
      literal[i] = 1;
    }
    t->model = std::move(m);
  } else {
    auto m = std::make_unique<SentencePieceModel>(v);
    for (int32_t i = 0; i < n; ++i) {
      if (v.types[i] != kTokenControl) continue;
      const int32_t id = m->find(v.tokens[i]);
      if (id >= 0) t->added.add(v.tokens[i], id, true);
      literal[i] = 1;
    }
    for (int32_t i = 0; i < n; ++i) {
      if (v.types[i] != kTokenUserDefined || m->spelled()[i] != v.tokens[i]) continue;
      t->added.add(v.tokens[i], m->find(v.tokens[i]), false);
      literal[i] = 1;
    }
    for (int32_t i = 0; i < n; ++i) literal[i] |= t->special[i];
    t->strip_first_space = v.add_space_prefix;
    t->model = std::move(m);
  }
  t->pieces = piece_table(v, literal);

  std::set<int32_t> eog;
  for (int32_t i : {v.eos, v.eot, v.eom})
    if (i >= 0) eog.insert(i);
  const auto& texts = eog_texts();
  for (int32_t i = 0; i < n; ++i)
    if (texts.count(v.tokens[i])) eog.insert(i);
  t->eog.assign(eog.begin(), eog.end());
  t->vocab = std::move(v);
  return t;
}

}  // namespace fastspec::tok
