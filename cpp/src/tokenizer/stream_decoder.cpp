// StreamDecoder: the bytes of each pushed token (after skip_special and the first-token space
// strip, as Tokenizer::decode) go through one incremental UTF-8 decoder; a trailing unfinished
// character waits in pending_ for the next token. The prompt's bytes go through it too, unemitted.
#include "fastspec/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace fastspec {

StreamDecoder::StreamDecoder(const Tokenizer& tok, const std::vector<int32_t>& prompt_ids, bool skip_special)
    : tok_(tok), skip_special_(skip_special) {
  std::string discard;
  for (int32_t id : prompt_ids) {
    pending_.append(bytes_of(id));
    discard.clear();
    const size_t used = tok::utf8_replace_append(pending_, false, discard);
    pending_.erase(0, used);
  }
}

std::string_view StreamDecoder::bytes_of(int32_t id) {
  tok_.check_id(id);
  const tok::TokenizerImpl& t = *tok_.impl_;
  if (skip_special_ && t.special[id]) return {};
  std::string_view b = t.pieces.at(id);
  if (first_) {
    first_ = false;
    if (t.strip_first_space && !b.empty() && b[0] == ' ') b.remove_prefix(1);
  }
  return b;
}

std::string StreamDecoder::push(int32_t id) {
  pending_.append(bytes_of(id));
  std::string out;
  const size_t used = tok::utf8_replace_append(pending_, false, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  tok::utf8_replace_append(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace fastspec
