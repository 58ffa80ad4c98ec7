// MergeTable (linear probing, load <= 1/2) and the heap-driven merge loop (see bpe.h).
#include "tokenizer/bpe.h"

#include <algorithm>
#include <functional>

namespace fastspec::tok {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old(std::move(slots_));
  slots_.assign(cap, Slot{kEmpty, 0, 0});
  mask_ = cap - 1;
  count_ = 0;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t h = hash(s.key) & mask_;
    while (slots_[h].key != kEmpty) h = (h + 1) & mask_;
    slots_[h] = s;
    ++count_;
  }
}

void MergeTable::grow() { reserve(std::max<size_t>(16, 2 * count_ + 2)); }

void MergeTable::put(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  if (2 * (count_ + 1) > slots_.size()) grow();
  const uint64_t key = pack(left, right);
  size_t h = hash(key) & mask_;
  while (slots_[h].key != kEmpty && slots_[h].key != key) h = (h + 1) & mask_;
  if (slots_[h].key == kEmpty) ++count_;
  slots_[h] = Slot{key, rank, merged};
}

void bpe_merge(const int32_t* symbols, size_t n, const MergeTable& merges, BpeScratch& s,
               std::vector<int32_t>& out) {
  if (n < 2) {
    out.insert(out.end(), symbols, symbols + n);
    return;
  }
  auto& syms = s.syms;
  auto& heap = s.heap;
  syms.resize(n);
  heap.clear();
  const auto later = std::greater<uint64_t>();  // min-heap on (rank, position)
  auto push = [&](int32_t pos) {
    int32_t rank, merged;
    const int32_t next = syms[pos].next;
    if (next < 0 || !merges.get(syms[pos].id, syms[next].id, rank, merged)) return;
    heap.push_back((static_cast<uint64_t>(static_cast<uint32_t>(rank)) << 32) | static_cast<uint32_t>(pos));
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (size_t i = 0; i < n; ++i)
    syms[i] = {symbols[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const uint64_t top = heap.back();
    heap.pop_back();
    const int32_t pos = static_cast<int32_t>(top & 0xFFFFFFFFu);
    const int32_t want_rank = static_cast<int32_t>(top >> 32);
    BpeScratch::Sym& left = syms[pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or last
    int32_t rank, merged;
    if (!merges.get(left.id, syms[left.next].id, rank, merged) || rank != want_rank) continue;  // stale
    BpeScratch::Sym& right = syms[left.next];
    left.id = merged;
    left.next = right.next;
    right.id = -1;
    if (left.next >= 0) syms[left.next].prev = pos;
    if (left.prev >= 0) push(left.prev);
    push(pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace fastspec::tok
