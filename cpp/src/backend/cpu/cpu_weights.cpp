// Weights prepared at load: the kernels read the GGUF block layout as stored (no repacking), but
// reading it from the file mapping is slower than from the backend's own memory (measured on the
// 2-core Xeon VM: Q8_0 GEMV 8 GB/s from the mapping vs 12 GB/s from anonymous memory; a plain read
// 14 GB/s with 4 KiB pages, 16 GB/s with 2 MiB pages). So each weight is copied once into
// anonymous memory with transparent huge pages requested, and the file pages it came from are
// released from this process (madvise DONTNEED on a read-only mapping only drops the mapping of
// those pages), so the weight is held once and peak RSS grows by at most one copy chunk during load.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kArena = size_t{1} << 30;
constexpr size_t kCopyChunk = size_t{4} << 20;  // bytes copied between releases of the source pages  // address space per arena (committed as written)

// Drops this process's mapping of the whole pages inside [p, p + n) (they stay in the page cache).
void release_pages(const void* p, size_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

}  // namespace

CpuBackend::~CpuBackend() {
  for (const Region& r : regions_) munmap(r.p, r.bytes);
}

void CpuBackend::prepare_weight(Weight& w) {
  const std::string name = w.info ? "'" + w.info->name + "'" : "a weight";
  if (w.type == DType::AWQ_INT4) return;  // three packed parts, read in place
  const DTypeTraits* tr = dtype_traits(w.type);
  if (!tr || !tr->dequantizable || w.cols % tr->block_size != 0)
    throw ModelError("cpu backend: cannot run " + name + " of type " + dtype_name(w.type) + " with " +
                     std::to_string(w.cols) + " columns");
  if (!copy_weights_) return;
  for (const Region& r : regions_)  // already ours (a tied embedding / output weight)
    if (w.data >= static_cast<const uint8_t*>(r.p) && w.data < static_cast<const uint8_t*>(r.p) + r.bytes) return;
  // Weights are packed one after another (64-byte aligned) into arenas of kArena bytes of address
  // space (MAP_NORESERVE: only pages written count), so small tensors do not each take a 2 MiB page.
  const size_t bytes = static_cast<size_t>(w.rows) * w.row_bytes;
  const size_t need = (bytes + 63) / 64 * 64;
  if (regions_.empty() || arena_used_ + need > regions_.back().bytes) {
    const size_t alloc = std::max(kArena, (need + kHuge - 1) / kHuge * kHuge);
    void* p = mmap(nullptr, alloc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      throw Error("cpu backend: cannot map " + std::to_string(alloc) + " bytes for " + name);
#ifdef MADV_HUGEPAGE
    madvise(p, alloc, MADV_HUGEPAGE);
#endif
    regions_.push_back({p, alloc});
    arena_used_ = 0;
  }
  uint8_t* dst = static_cast<uint8_t*>(regions_.back().p) + arena_used_;
  arena_used_ += need;
  // Copy in chunks ending on page boundaries of the source and release each chunk's file pages
  // right away, so peak RSS stays at about one copy (the 178 MB output layer of Gemma 3 included).
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t src = reinterpret_cast<uintptr_t>(w.data);
  for (size_t off = 0; off < bytes;) {
    size_t end = std::min(bytes, (src + off + kCopyChunk + page - 1) / page * page - src);
    std::memcpy(dst + off, w.data + off, end - off);
    release_pages(w.data + off, end - off);
    off = end;
  }
  w.data = dst;
}

}  // namespace fastspec::cpu
