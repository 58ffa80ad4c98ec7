// Every SIMD integer-dot path this CPU supports against the scalar reference, in C++ (so that the
// same binary checks the x86 paths natively and the NEON paths under qemu-aarch64; tests/
// test_aarch64.py): for each panel type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 AWQ in groups of 32 / 64 / 128,
// Q4_K Q5_K Q6_K), random stored weights packed at load as the backend does (qpack.h; AWQ: the
// packed size and the dequantized panels checked too), 1..17 activation rows and a partial last panel; the results must be bit-equal to the scalar path's, and a row's result must
// not depend on how many rows ran with it (batch invariance). The activation quantizers too.
//   fastspec-test-qdot_paths [PATH]    (PATH: one of _core.cpu_paths(); default: every supported one)
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/dequant_awq.h"
#include "backend/cpu/isa.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/qpack.h"
#include "check.h"

using namespace fastspec;
using namespace fastspec::cpu;

namespace {

struct TypeCase {
  const char* name;
  QType q;
  DType t;
  int block, bytes;            // stored block: elements, bytes
  std::vector<int> f16_at;     // byte offsets of the block's f16 fields (scales, mins)
  int64_t group = 0;           // AWQ: inputs per scale / zero group
};

const std::vector<TypeCase>& cases() {
  static const std::vector<TypeCase> c = {
      {"Q4_0", QType::q4_0, DType::Q4_0, 32, 18, {0}},       {"Q4_1", QType::q4_1, DType::Q4_1, 32, 20, {0, 2}},
      {"Q5_0", QType::q5_0, DType::Q5_0, 32, 22, {0}},       {"Q5_1", QType::q5_1, DType::Q5_1, 32, 24, {0, 2}},
      {"Q8_0", QType::q8_0, DType::Q8_0, 32, 34, {0}},       {"Q4_K", QType::q4_k, DType::Q4_K, 256, 144, {0, 2}},
      {"Q5_K", QType::q5_k, DType::Q5_K, 256, 176, {0, 2}},  {"Q6_K", QType::q6_k, DType::Q6_K, 256, 210, {208}},
      {"AWQ g32", QType::awq4, DType::AWQ_INT4, 32, 0, {}, 32},
      {"AWQ g64", QType::awq4, DType::AWQ_INT4, 32, 0, {}, 64},
      {"AWQ g128", QType::awq4, DType::AWQ_INT4, 32, 0, {}, 128},
  };
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A finite f16 of magnitude 2^-6 .. 2^1, random sign and mantissa.
uint16_t random_f16(std::mt19937& g) {
  const uint16_t sign = static_cast<uint16_t>(g() & 1) << 15;
  const uint16_t exp = static_cast<uint16_t>(9 + g() % 7) << 10;
  return static_cast<uint16_t>(sign | exp | (g() & 0x3ff));
}

// Packed row bytes of the case's type (qpack.h).
int64_t packed_row_bytes(const TypeCase& c, int64_t n) {
  return static_cast<int64_t>(c.q == QType::awq4 ? awq_pack_row_bytes(n, c.group) : qpack_row_bytes(c.t, n));
}

// Packed weights [rows, n] of the case's type (qpack.h), built from random stored rows.
std::vector<uint8_t> packed_weights(const TypeCase& c, int64_t rows, int64_t n, std::mt19937& g) {
  if (c.q == QType::awq4) {  // AutoAWQ parts packed per panel as the loader does
    const int64_t group = c.group;
    std::vector<uint8_t> qw(static_cast<size_t>(n * rows / 2)), qz(static_cast<size_t>(n / group * rows / 2));
    std::vector<uint16_t> sc(static_cast<size_t>(n / group * rows));
    for (auto& b : qw) b = static_cast<uint8_t>(g());
    for (auto& b : qz) b = static_cast<uint8_t>(g());
    for (auto& h : sc) h = random_f16(g);
    AwqParts p;
    p.qweight = qw.data(), p.qzeros = qz.data(), p.scales = reinterpret_cast<const uint8_t*>(sc.data());
    p.in = n, p.out = rows, p.group = group;
    check_awq_sizes(p);  // the parts above hold exactly in x out codes (FormatError otherwise)
    // the size (qpack.h): d f16 + m f32 per group and row, 16 bytes of codes per 32 inputs
    const uint64_t rb = awq_pack_row_bytes(n, group);
    CHECK(rb == static_cast<uint64_t>(n / 32 * 16 + n / group * 6));
    CHECK(awq_group_blocks(n, static_cast<int64_t>(rb)) == group / 32);
    CHECK(awq_pack_bytes(rows, n, group) == static_cast<uint64_t>((rows + 15) / 16 * 16) * rb);
    std::vector<uint8_t> out(awq_pack_bytes(rows, n, group));
    for (int64_t panel = 0; panel * 16 < rows; ++panel) awq_pack_panel(p, panel, out.data() + panel * 16 * rb);
    // the panels hold the same values: every row dequantizes equal to the parts' row (exact; only
    // the sign of a zero may differ: (q - z) s is -0 for a negative s, d q + m is +0)
    std::vector<float> want(static_cast<size_t>(n)), got(want);
    for (int64_t o = 0; o < rows; ++o) {
      dequantize_awq_row(p, o, want.data());
      dequant_packed_row(DType::AWQ_INT4, out.data(), rb, n, o, got.data());
      CHECK(want == got);
    }
    return out;
  }
  const int64_t nb = n / c.block, row_bytes = nb * c.bytes;
  std::vector<uint8_t> stored(static_cast<size_t>(rows * row_bytes));
  for (auto& b : stored) b = static_cast<uint8_t>(g());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b)
      for (int off : c.f16_at) {
        const uint16_t h = random_f16(g);
        std::memcpy(&stored[static_cast<size_t>(r * row_bytes + b * c.bytes + off)], &h, 2);
      }
  std::vector<uint8_t> out(qpack_bytes(c.t, rows, n));
  qpack_matrix(c.t, stored.data(), static_cast<uint64_t>(row_bytes), rows, n, out.data());
  return out;
}

// T quantized activation rows (scalar quantizer), with a few outliers per row.
struct Acts {
  ActLayout lay;
  std::vector<int8_t> q;
  std::vector<float> d, ds, x;
  std::vector<int32_t> s;
  ActQ view(int64_t t0 = 0) const {
    ActQ a;
    a.lay = lay, a.q = q.data(), a.d = d.data(), a.s = s.data(), a.ds = ds.data();
    return a.from_row(t0);
  }
};

Acts activations(ActFormat f, int64_t T, int64_t n, std::mt19937& g) {
  Acts a;
  a.lay = act_layout(f, n);
  a.x.resize(static_cast<size_t>(T * n));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : a.x) v = nd(g);
  for (int64_t t = 0; t < T; ++t) a.x[static_cast<size_t>(t * n + g() % n)] *= 40.0f;
  a.q.assign(static_cast<size_t>(T * a.lay.q_stride), 0);
  a.d.assign(static_cast<size_t>(T * a.lay.d_stride), 0.0f);
  a.ds.assign(static_cast<size_t>(T * a.lay.d_stride), 0.0f);
  a.s.assign(static_cast<size_t>(T * a.lay.s_stride), 0);
  const QuantFn quant = qkernels(Isa::scalar).quant[static_cast<int>(f)];
  for (int64_t t = 0; t < T; ++t)
    quant(a.x.data() + t * n, a.lay, a.q.data() + t * a.lay.q_stride, a.d.data() + t * a.lay.d_stride,
          a.s.data() + t * a.lay.s_stride, a.ds.data() + t * a.lay.d_stride);
  return a;
}

int check_path(Isa isa) {
  const int before = fastspec_test::failures();
  const QKernels& ref = qkernels(Isa::scalar);
  const QKernels& k = qkernels(isa);
  std::mt19937 g(1234);
  // the quantizers: bit-equal codes, scales and sums
  for (ActFormat f : {ActFormat::q8, ActFormat::q8k}) {
    const int64_t n = f == ActFormat::q8 ? 288 : 512;  // Q8: 9 blocks, padded to 16
    Acts a = activations(f, 3, n, g);
    for (int64_t t = 0; t < 3; ++t) {
      std::vector<int8_t> q(static_cast<size_t>(a.lay.q_stride), 1);
      std::vector<float> d(static_cast<size_t>(a.lay.d_stride), 1.0f), ds(d);
      std::vector<int32_t> s(static_cast<size_t>(a.lay.s_stride), 1);
      k.quant[static_cast<int>(f)](a.x.data() + t * n, a.lay, q.data(), d.data(), s.data(), ds.data());
      CHECK(std::memcmp(q.data(), a.q.data() + t * a.lay.q_stride, q.size()) == 0);
      CHECK(std::memcmp(d.data(), a.d.data() + t * a.lay.d_stride, d.size() * 4) == 0);
      CHECK(std::memcmp(s.data(), a.s.data() + t * a.lay.s_stride, s.size() * 4) == 0);
      if (f == ActFormat::q8) CHECK(std::memcmp(ds.data(), a.ds.data() + t * a.lay.d_stride, ds.size() * 4) == 0);
    }
  }
  for (const TypeCase& c : cases()) {
    const bool kq = c.block == 256;
    const int64_t n = kq ? 512 : c.q == QType::awq4 ? 384 : 288;  // AWQ: 3 groups of 128
    const int64_t rows = c.q == QType::awq4 ? 40 : 37;  // 3 panels, the last partial (AWQ: out % 8 == 0)
    const ActFormat f = kq ? ActFormat::q8k : ActFormat::q8;
    const std::vector<uint8_t> w = packed_weights(c, rows, n, g);
    const int64_t rb = packed_row_bytes(c, n);
    const Acts a = activations(f, 17, n, g);
    const int qi = static_cast<int>(c.q);
    // each row alone, on this path
    std::vector<std::vector<float>> alone(17);
    for (int64_t t = 0; t < 17; ++t) {
      alone[t].assign(static_cast<size_t>(rows), -1.0f);
      k.rows[qi](w.data(), rb, rows, a.view(t), 1, alone[t].data(), rows, 1);
    }
    for (int64_t T = 1; T <= 17; ++T) {
      std::vector<float> y(static_cast<size_t>(T * rows), -1.0f), y_ref(y);
      k.rows[qi](w.data(), rb, rows, a.view(), T, y.data(), rows, 1);
      ref.rows[qi](w.data(), rb, rows, a.view(), T, y_ref.data(), rows, 1);
      const bool eq = same_bits(y, y_ref);
      if (!eq) {
        int64_t first = 0;
        while (std::memcmp(&y[first], &y_ref[first], 4) == 0) ++first;
        std::fprintf(stderr, "%s %s T=%lld: first difference at row t=%lld j=%lld: %.9g vs scalar %.9g\n",
                     isa_name(isa), c.name, static_cast<long long>(T), static_cast<long long>(first / rows),
                     static_cast<long long>(first % rows), y[first], y_ref[first]);
      }
      CHECK(eq);
      for (int64_t t = 0; t < T; ++t)
        CHECK(std::memcmp(y.data() + t * rows, alone[t].data(), rows * sizeof(float)) == 0);
    }
  }
  const int bad = fastspec_test::failures() - before;
  std::printf("%s: %d failures (%d types, 1..17 rows)\n", isa_name(isa), bad, static_cast<int>(QType::count));
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Isa> paths;
  if (argc > 1) {
    Isa isa;
    if (!isa_from_name(argv[1], &isa) || !isa_supported(isa)) {
      std::fprintf(stderr, "qdot_paths: '%s' is not a supported CPU path here (best: %s)\n", argv[1],
                   isa_name(isa_best()));
      return 2;
    }
    paths.push_back(isa);
  } else {
    for (int i = 1; i < kIsaCount; ++i)
      if (isa_supported(static_cast<Isa>(i))) paths.push_back(static_cast<Isa>(i));
  }
  std::printf("best path: %s\n", isa_name(isa_best()));
  for (Isa isa : paths) check_path(isa);
  return fastspec_test::failures() != 0;
}
