// BPE merges implied by a SentencePiece vocabulary that stores none (Gemma), as transformers'
// generate_merges and tokenizer_load.py's _merges_from_vocab derive them:
//   every split of a token t into two tokens (left, right) is a merge (left, right) -> t;
//   ordered, best first, by t's score, or (no scores) by t's file position, earlier first; then
//   by a longer left part, then a longer right part (lengths in characters).
// Position order with unique tokens needs no sort: tokens in file order, each one's splits
// longest-left first. Otherwise (scores, or repeated tokens): tokens in first-occurrence order,
// each one's splits sorted by (left id, right id), then a stable sort on (score, left length,
// right length), descending.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/segment_model.h"

namespace fastspec::tok {

// spelled: [n] token spellings; vocab: spelling -> id; scores: nullptr for position order, else
// [<= n] (tokens past its end get no merges). Puts the merges into out with rank = order.
void spm_merges_from_vocab(const std::vector<std::string>& spelled, const TokenMap& vocab,
                           const std::vector<double>* scores, MergeTable& out);

}  // namespace fastspec::tok
