// The BPE merge loop shared by the byte-level and SentencePiece-style models.
//
//   symbols = the word's initial token ids; repeat: among adjacent pairs (a, b) that have a
//   merge, take the one of lowest rank (leftmost on ties) and replace it by its merged id;
//   until no adjacent pair has a merge.
// Implemented with a min-heap of (rank, position) over a linked list of symbols (as Hugging Face
// tokenizers' Word::merge_all): entries made stale by a merge are skipped when popped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fastspec::tok {

// (left id, right id) -> (rank, merged id): an open-addressing hash table. A later put() of the
// same pair replaces the earlier one (as a map built from the merge list in order).
class MergeTable {
 public:
  void reserve(size_t n);
  void put(int32_t left, int32_t right, int32_t rank, int32_t merged);
  bool get(int32_t left, int32_t right, int32_t& rank, int32_t& merged) const {
    if (slots_.empty()) return false;
    const uint64_t key = pack(left, right);
    for (size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
      const Slot& s = slots_[h];
      if (s.key == key) {
        rank = s.rank;
        merged = s.merged;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow();

  struct Slot {  // key and value side by side: one cache line per probe
    uint64_t key;
    int32_t rank, merged;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

// Reusable buffers of bpe_merge (one per encode call, so a shared tokenizer stays const).
struct BpeScratch {
  struct Sym {
    int32_t id, prev, next;
  };
  std::vector<Sym> syms;
  std::vector<uint64_t> heap;  // (rank << 32) | position
};

// Merges symbols[0, n) and appends the resulting ids to out.
void bpe_merge(const int32_t* symbols, size_t n, const MergeTable& merges, BpeScratch& scratch,
               std::vector<int32_t>& out);

}  // namespace fastspec::tok
