// Weights prepared at load. In q8 precision every integer-dot type (the 32-element block types, the
// K-quants, AWQ) is repacked into 16-row panels (qpack.h: the integer kernels' layout, about the
// stored size, always in our memory); other weights keep their stored layout, but reading it from
// the file mapping is slower than from the backend's own memory (measured on the 2-core Xeon VM:
// Q8_0 GEMV 8 GB/s from the mapping vs 12 GB/s from anonymous memory; a plain read
// 14 GB/s with 4 KiB pages, 16 GB/s with 2 MiB pages). So each weight is copied once into
// anonymous memory with transparent huge pages requested, and the file pages it came from are
// released from this process (madvise DONTNEED on a read-only mapping only drops the mapping of
// those pages), so the weight is held once and peak RSS grows by at most one copy chunk during load.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/dequant.h"
#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/qpack.h"
#include "fastspec/status.h"

namespace fastspec::cpu {
namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kArena = size_t{1} << 30;  // address space per arena (committed as written)
constexpr size_t kCopyChunk = size_t{4} << 20;  // bytes copied between releases of the source pages

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

uint8_t* CpuBackend::arena_alloc(size_t bytes, const std::string& name) {
  // Weights are packed one after another (64-byte aligned) into arenas of kArena bytes of address
  // space (MAP_NORESERVE: only pages written count), so small tensors do not each take a 2 MiB page.
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
  return dst;
}

// AWQ int4: in q8 precision packed into panels for the integer kernels (qpack.h), the pages of
// the three parts released afterwards; otherwise (f32 precision, or a group that is not a multiple of 32)
// the parts are read in place by the float path.
void CpuBackend::prepare_awq(Weight& w, const std::string& name) {
  if (precision_ != Precision::q8 || !awq_packable(w.cols, w.awq_group)) return;
  AwqParts p;
  p.qweight = w.data, p.qzeros = w.awq_qzeros, p.scales = w.awq_scales;
  p.in = w.cols, p.out = w.rows, p.group = w.awq_group;
  check_awq_sizes(p);
  const uint64_t rb = awq_pack_row_bytes(w.cols, w.awq_group);
  uint8_t* dst = arena_alloc(awq_pack_bytes(w.rows, w.cols, w.awq_group), name);
  for (int64_t panel = 0; panel * kPanelRows < w.rows; ++panel)
    awq_pack_panel(p, panel, dst + static_cast<uint64_t>(panel) * kPanelRows * rb);
  release_pages(p.qweight, static_cast<size_t>(p.in * p.out / 2));
  release_pages(p.qzeros, static_cast<size_t>(p.in / p.group * p.out / 2));
  release_pages(p.scales, static_cast<size_t>(p.in / p.group * p.out * 2));
  w.data = dst;
  w.packed = true;
  w.row_bytes = rb;
  w.awq_qzeros = w.awq_scales = nullptr;
}

// EngineOptions::output_q8: a float output layer quantized to Q8_0 as llama.cpp's quantize_row_q8_0
// does (per 32 values d = max|x| / 127, q = round(x / d), d stored as f16), straight into panels,
// one panel of rows at a time; the file's pages are released as they are read.
void CpuBackend::requantize_q8_0(Weight& w, const std::string& name) {
  const int64_t nb = w.cols / 32;
  const uint64_t stored_rb = static_cast<uint64_t>(nb * 34), prb = qpack_row_bytes(DType::Q8_0, w.cols);
  uint8_t* dst = arena_alloc(qpack_bytes(DType::Q8_0, w.rows, w.cols), name);
  std::vector<uint8_t> rows(static_cast<size_t>(kPanelRows * stored_rb));  // load-time scratch
  std::vector<float> x(static_cast<size_t>(w.cols));
  for (int64_t r0 = 0; r0 < w.rows; r0 += kPanelRows) {
    const int64_t n = std::min<int64_t>(kPanelRows, w.rows - r0);
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* src = w.data + static_cast<uint64_t>(r0 + j) * w.row_bytes;
      dequantize_row(w.type, src, x.data(), w.cols);
      uint8_t* out = rows.data() + j * stored_rb;
      for (int64_t b = 0; b < nb; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh;
        f32_to_f16(&d, &dh, 1);
        std::memcpy(out + 34 * b, &dh, 2);
        for (int i = 0; i < 32; ++i)
          out[34 * b + 2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[32 * b + i] * id)));
      }
    }
    qpack_panel(DType::Q8_0, rows.data(), stored_rb, n, w.cols, dst + static_cast<uint64_t>(r0) * prb);
    release_pages(w.data + static_cast<uint64_t>(r0) * w.row_bytes, static_cast<size_t>(n) * w.row_bytes);
  }
  w.data = dst;
  w.type = DType::Q8_0;
  w.packed = true;
  w.row_bytes = prb;
}

void CpuBackend::prepare_weight(Weight& w) {
  const std::string name = w.info ? "'" + w.info->name + "'" : "a weight";
  if (w.type == DType::AWQ_INT4) return prepare_awq(w, name);
  const DTypeTraits* tr = dtype_traits(w.type);
  if (!tr || !tr->dequantizable || w.cols % tr->block_size != 0)
    throw ModelError("cpu backend: cannot run " + name + " of type " + dtype_name(w.type) + " with " +
                     std::to_string(w.cols) + " columns");
  for (const Region& r : regions_)  // already ours (a tied embedding / output weight)
    if (w.data >= static_cast<const uint8_t*>(r.p) && w.data < static_cast<const uint8_t*>(r.p) + r.bytes) return;
  if (output_q8_ && w.is_output && precision_ == Precision::q8 && w.cols % 32 == 0 &&
      (w.type == DType::F16 || w.type == DType::BF16 || w.type == DType::F32))
    return requantize_q8_0(w, name);
  const bool pack = precision_ == Precision::q8 && qpack_type(w.type);  // 16-row panels (qpack.h)
  if (!copy_weights_ && !pack) return;
  const size_t bytes = static_cast<size_t>(w.rows) * w.row_bytes;
  uint8_t* dst = arena_alloc(pack ? qpack_bytes(w.type, w.rows, w.cols) : bytes, name);
  const uint64_t packed_row = pack ? qpack_row_bytes(w.type, w.cols) : w.row_bytes;
  // Copy (or pack) in chunks ending on page boundaries of the source and release each chunk's file
  // pages right away, so peak RSS stays at about one copy (the 178 MB output layer of Gemma 3 included).
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t src = reinterpret_cast<uintptr_t>(w.data);
  const size_t panel = static_cast<size_t>(kPanelRows) * w.row_bytes;
  size_t released = 0;  // source bytes [0, released) are no longer mapped
  for (size_t off = 0; off < bytes;) {
    size_t end = std::min(bytes, (src + off + kCopyChunk + page - 1) / page * page - src);
    if (pack) {  // whole panels: off stays a multiple of the panel size
      end = std::min(bytes, (end + panel - 1) / panel * panel);
      for (size_t p = off; p < end; p += panel) {
        const int64_t r0 = static_cast<int64_t>(p / w.row_bytes);
        qpack_panel(w.type, w.data + p, w.row_bytes, std::min<int64_t>(kPanelRows, w.rows - r0), w.cols,
                    dst + static_cast<uint64_t>(r0) * packed_row);
      }
    } else {
      std::memcpy(dst + off, w.data + off, end - off);
    }
    release_pages(w.data + released, end - released);
    released = end == bytes ? end : (src + end) / page * page - src;  // a straddling page goes next time
    off = end;
  }
  w.data = dst;
  w.packed = pack;
  w.row_bytes = packed_row;  // packed: bytes per row in the panels (qpack.h)
}

}  // namespace fastspec::cpu
