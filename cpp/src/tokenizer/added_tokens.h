// Added tokens (CONTROL and USER_DEFINED vocabulary entries): matched whole in the input text
// before any model sees it, leftmost-longest (at the first position where some token starts,
// the longest one), as tokenizers' AddedVocabulary does. A byte trie over the token texts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace fastspec::tok {

class AddedTokens {
 public:
  // An empty text is ignored; a text added twice keeps its first id.
  void add(std::string_view text, int32_t id, bool special);

  struct Match {
    size_t begin, end;  // byte range in the text
    int32_t id;
  };
  // The matches in text, in order. With parse_special false, special tokens' matches are
  // dropped after matching (their text is then ordinary text), as tokenizers'
  // encode_special_tokens does.
  void find(std::string_view text, bool parse_special, std::vector<Match>& out) const;

  size_t size() const { return count_; }

 private:
  struct Node {
    int32_t id = -1;
    bool special = false;
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
  };
  int32_t child(int32_t node, uint8_t c) const;

  std::vector<Node> nodes_{1};  // nodes_[0] is the root
  std::vector<int32_t> root_next_ = std::vector<int32_t>(256, -1);
  size_t count_ = 0;
};

}  // namespace fastspec::tok
